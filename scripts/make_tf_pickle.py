"""Writes a StyleGAN2 network in the legacy TensorFlow pickle layout (`(G, D, Gs)` of `dnnlib.tflib.network.Network`).

For trying the TF-pickle workflow (and `convert_network.py`) without downloading a model-zoo file: the networks are
ours (a fresh random StyleGAN2, or G/G_ema/D of a StyleGAN2 pickle given with --source), stored with the layout
and tensor conventions of `docs/legacy_tf_format.md`. The TensorFlow source field holds a placeholder text. Written
atomically.

Examples:
    python scripts/make_tf_pickle.py --dest out/sg2-tf.pkl
    python scripts/make_tf_pickle.py --dest out/sg2-tf.pkl --resolution 128 --seed 3
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import pickle
import sys
import tempfile
import types

import click
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


class Network:
    """Stand-in that pickles under the TF class name with a given state dict."""

    def __init__(self, state: dict) -> None:
        self._state = state

    def __getstate__(self) -> dict:
        return self._state


Network.__module__ = 'dnnlib.tflib.network'


@contextlib.contextmanager
def _tf_class_importable():
    """Makes `dnnlib.tflib.network.Network` resolvable for the pickler, for the duration of the block."""
    names = ('dnnlib.tflib', 'dnnlib.tflib.network')
    saved = {n: sys.modules.get(n) for n in names}
    mod = types.ModuleType('dnnlib.tflib.network')
    mod.Network = Network  # type: ignore[attr-defined]
    sys.modules['dnnlib.tflib'] = types.ModuleType('dnnlib.tflib')
    sys.modules['dnnlib.tflib.network'] = mod
    try:
        yield
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def _dense(a):
    return np.ascontiguousarray(a.T)  # [out, in] -> [in, out]


def _conv(a, flip=False):
    if flip:
        a = a[:, :, ::-1, ::-1]
    return np.ascontiguousarray(a.transpose(2, 3, 1, 0))  # [O, I, kh, kw] -> [kh, kw, I, O]


def _modconv(prefix, layer, flip=False):
    out = [
        (f'{prefix}/weight', _conv(layer.weight.numpy(), flip)),
        (f'{prefix}/bias', layer.bias.numpy()),
        (f'{prefix}/mod_weight', _dense(layer.affine.weight.numpy())),
        (f'{prefix}/mod_bias', layer.affine.bias.numpy() - 1),  # TF stores the style bias without its +1
    ]
    if getattr(layer, 'use_noise', False):
        out.append((f'{prefix}/noise_strength', layer.noise_strength.numpy()))
    return out


def generator_state(G, name: str, static_kwargs: dict) -> dict:
    """TF state dict of a generator (components mapping/synthesis)."""
    mapping = []
    if G.c_dim > 0:
        mapping += [('LabelEmbed/weight', _dense(G.mapping.embed.weight.numpy())),
                    ('LabelEmbed/bias', G.mapping.embed.bias.numpy())]  # fmt: skip
    for i in range(G.mapping.num_layers):
        fc = getattr(G.mapping, f'fc{i}')
        mapping += [(f'Dense{i}/weight', _dense(fc.weight.numpy())), (f'Dense{i}/bias', fc.bias.numpy())]
    synthesis = []
    for res in G.synthesis.block_resolutions:
        block = getattr(G.synthesis, f'b{res}')
        scope, log2 = f'{res}x{res}', int(np.log2(res))
        if res == 4:
            synthesis += [(f'{scope}/Const/const', block.const.numpy()[None])]
            synthesis += _modconv(f'{scope}/Conv', block.conv1)
            synthesis += [('noise0', block.conv1.noise_const.numpy()[None, None])]
        else:
            synthesis += _modconv(f'{scope}/Conv0_up', block.conv0, flip=True)
            synthesis += _modconv(f'{scope}/Conv1', block.conv1)
            synthesis += [(f'noise{2 * log2 - 5}', block.conv0.noise_const.numpy()[None, None]),
                          (f'noise{2 * log2 - 4}', block.conv1.noise_const.numpy()[None, None])]  # fmt: skip
        if hasattr(block, 'torgb'):
            synthesis += _modconv(f'{scope}/ToRGB', block.torgb)
    common = dict(version=4, build_module_src='# TensorFlow source (not included)\n', build_func_name='G_main')
    comps = {
        'mapping': Network(dict(common, name='G_mapping', static_kwargs=dict(static_kwargs, dlatent_broadcast=G.num_ws),
                                components={}, variables=mapping)),
        'synthesis': Network(dict(common, name='G_synthesis', static_kwargs=dict(static_kwargs), components={},
                                  variables=synthesis)),
    }  # fmt: skip
    return dict(common, name=name, static_kwargs=static_kwargs, components=comps,
                variables=[('dlatent_avg', G.mapping.w_avg.numpy())])  # fmt: skip


def discriminator_state(D, static_kwargs: dict) -> dict:
    variables = []
    for res in D.block_resolutions:
        block = getattr(D, f'b{res}')
        scope = f'{res}x{res}'
        for ours, tf in (('fromrgb', 'FromRGB'), ('conv0', 'Conv0'), ('conv1', 'Conv1_down'), ('skip', 'Skip')):
            layer = getattr(block, ours, None)
            if layer is not None:
                variables.append((f'{scope}/{tf}/weight', _conv(layer.weight.numpy())))
                if layer.bias is not None:
                    variables.append((f'{scope}/{tf}/bias', layer.bias.numpy()))
    variables += [('4x4/Conv/weight', _conv(D.b4.conv.weight.numpy())), ('4x4/Conv/bias', D.b4.conv.bias.numpy()),
                  ('4x4/Dense0/weight', _dense(D.b4.fc.weight.numpy())), ('4x4/Dense0/bias', D.b4.fc.bias.numpy()),
                  ('Output/weight', _dense(D.b4.out.weight.numpy())), ('Output/bias', D.b4.out.bias.numpy())]  # fmt: skip
    return dict(version=4, name='D', static_kwargs=static_kwargs, components={}, variables=variables,
                build_module_src='# TensorFlow source (not included)\n', build_func_name='D_main')  # fmt: skip


@click.command()
@click.option('--dest', required=True, type=click.Path(dir_okay=False, path_type=pathlib.Path), metavar='PKL',
              help='Output TF-format pickle')  # fmt: skip
@click.option('--resolution', type=click.Choice(['32', '64', '128', '256']), default='64', show_default=True,
              help='Image resolution (px) of the random network')  # fmt: skip
@click.option('--seed', type=click.IntRange(0, 2**31 - 1), default=0, show_default=True, metavar='INT',
              help='Random seed of the weights')  # fmt: skip
def main(dest: pathlib.Path, resolution: str, seed: int) -> None:
    """Write a random StyleGAN2 (G, D, Gs) in the TensorFlow pickle layout."""
    import torch

    from training.networks_stylegan2 import Discriminator, Generator

    res = int(resolution)
    fmap_base, fmap_max = 4096, 256  # channel_base = 2 * fmap_base
    static_kwargs = dict(resolution=res, num_channels=3, label_size=0, latent_size=512, dlatent_size=512,
                         fmap_base=fmap_base, fmap_max=fmap_max, mapping_layers=8, architecture='skip',
                         num_fp16_res=0, conv_clamp=None)  # fmt: skip
    torch.manual_seed(seed)
    kw = dict(channel_base=2 * fmap_base, channel_max=fmap_max, num_fp16_res=0, conv_clamp=None)
    G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, **kw).eval().requires_grad_(False)
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mapping(torch.randn([256, 512]), None)[:, 0].mean(0))  # a realistic w_avg
    D = Discriminator(c_dim=0, img_resolution=res, img_channels=3, **kw).eval().requires_grad_(False)
    d_kwargs = {k: v for k, v in static_kwargs.items() if k != 'mapping_layers'} | dict(architecture='resnet')
    tf_G = Network(generator_state(G, 'G', static_kwargs))
    tf_Gs = Network(generator_state(G, 'Gs', static_kwargs))
    tf_D = Network(discriminator_state(D, d_kwargs))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f'.{dest.name}.', suffix='.part', delete=False) as f:
        with _tf_class_importable():
            pickle.dump((tf_G, tf_D, tf_Gs), f, protocol=3)
    os.replace(f.name, dest)
    click.echo(f'Wrote {dest}: StyleGAN2 {res}x{res} (random weights) in the TensorFlow pickle layout')


if __name__ == '__main__':
    main()
