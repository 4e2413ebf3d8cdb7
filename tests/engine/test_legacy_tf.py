"""Legacy TensorFlow StyleGAN2(-ADA) pickles: safe reading, conversion, round trips and clear errors.

The TF-format pickles are built here from our own networks by an independent inverse of the format rules
(docs/legacy_tf_format.md): our state-dict names are parsed and mapped to TF names, tensors transformed back.
"""

from __future__ import annotations

import pathlib
import pickle
import re
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from engine.loading import LoadError, UnsafePickleError, load_network_pkl
from training.networks_stylegan2 import Discriminator, Generator

REPO = pathlib.Path(__file__).resolve().parents[2]
RES = 16
FMAP_BASE = 128  # channel_base 256: 64, 32, 16 channels at 4, 8, 16 px (capped at 32)
FMAP_MAX = 32
Z = 16


# ----------------------------------------------------------------------------
# The inverse: our networks -> TF variables.


def _to_tf_dense(w):
    return w.T.copy()


def _to_tf_conv(w, flip=False):
    if flip:
        w = w[:, :, ::-1, ::-1]
    return w.transpose(2, 3, 1, 0).copy()  # [O, I, kh, kw] -> [kh, kw, I, O]


def tf_generator_vars(G, lod=False):
    """{component: [(name, array)]} for a TF generator holding the weights of our G."""
    res_log2 = int(np.log2(G.img_resolution))
    comps = {'': [], 'mapping': [], 'synthesis': []}
    for name, t in G.state_dict().items():
        a = t.detach().cpu().numpy().astype(np.float32)
        if name.endswith('resample_filter'):
            continue
        if name == 'mapping.w_avg':
            comps[''].append(('dlatent_avg', a))
            continue
        m = re.fullmatch(r'mapping\.(fc(\d+)|embed)\.(weight|bias)', name)
        if m:
            layer = 'LabelEmbed' if m.group(1) == 'embed' else f'Dense{m.group(2)}'
            comps['mapping'].append((f'{layer}/{m.group(3)}', _to_tf_dense(a) if m.group(3) == 'weight' else a))
            continue
        m = re.fullmatch(r'synthesis\.b(\d+)\.(.*)', name)
        assert m, name
        res, rest = int(m.group(1)), m.group(2)
        scope = f'{res}x{res}'
        if rest == 'const':
            comps['synthesis'].append((f'{scope}/Const/const', a[None]))
            continue
        if rest == 'skip.weight':
            comps['synthesis'].append((f'{scope}/Skip/weight', _to_tf_conv(a, flip=True)))
            continue
        layer, param = rest.split('.', 1)
        tf_layer = {'conv0': 'Conv0_up', 'conv1': 'Conv' if res == 4 else 'Conv1', 'torgb': 'ToRGB'}[layer]
        if layer == 'torgb' and lod:
            lod_scope = f'ToRGB_lod{res_log2 - int(np.log2(res))}'
            prefix = lod_scope
        else:
            prefix = f'{scope}/{tf_layer}'
        if param == 'noise_const':
            idx = 0 if res == 4 else 2 * int(np.log2(res)) - (5 if layer == 'conv0' else 4)
            comps['synthesis'].append((f'noise{idx}', a[None, None]))
        elif param == 'weight':
            comps['synthesis'].append((f'{prefix}/weight', _to_tf_conv(a, flip=(layer == 'conv0'))))
        elif param == 'affine.weight':
            comps['synthesis'].append((f'{prefix}/mod_weight', _to_tf_dense(a)))
        elif param == 'affine.bias':
            comps['synthesis'].append((f'{prefix}/mod_bias', a - 1))
        else:
            comps['synthesis'].append((f'{prefix}/{param}', a))
    return comps


def tf_discriminator_vars(D, lod=False):
    out = []
    res_log2 = int(np.log2(D.img_resolution))
    for name, t in D.state_dict().items():
        a = t.detach().cpu().numpy().astype(np.float32)
        if name.endswith('resample_filter'):
            continue
        m = re.fullmatch(r'mapping\.(fc(\d+)|embed)\.(weight|bias)', name)
        if m:
            layer = 'LabelEmbed' if m.group(1) == 'embed' else f'Mapping{m.group(2)}'
            out.append((f'{layer}/{m.group(3)}', _to_tf_dense(a) if m.group(3) == 'weight' else a))
            continue
        m = re.fullmatch(r'b(\d+)\.(\w+)\.(weight|bias)', name)
        assert m, name
        res, layer, param = int(m.group(1)), m.group(2), m.group(3)
        if res == 4:
            tf_layer = {'conv': '4x4/Conv', 'fc': '4x4/Dense0', 'out': 'Output', 'fromrgb': '4x4/FromRGB'}[layer]
            dense = layer in ('fc', 'out')
        else:
            tf_layer = {'fromrgb': 'FromRGB', 'conv0': 'Conv0', 'conv1': 'Conv1_down', 'skip': 'Skip'}[layer]
            tf_layer = f'{res}x{res}/{tf_layer}'
            if layer == 'fromrgb' and lod:
                tf_layer = f'FromRGB_lod{res_log2 - int(np.log2(res))}'
            dense = False
        if param == 'weight':
            a = _to_tf_dense(a) if dense else _to_tf_conv(a)
        out.append((f'{tf_layer}/{param}', a))
    return out


class _FakeTFNetwork:
    """Pickles as `dnnlib.tflib.network.Network` with a given state dict, as the TF code wrote it."""

    def __init__(self, state):
        self._state = state

    def __getstate__(self):
        return self._state

    def __setstate__(self, state):
        self._state = state


_FakeTFNetwork.__module__ = 'dnnlib.tflib.network'
_FakeTFNetwork.__qualname__ = 'Network'
_FakeTFNetwork.__name__ = 'Network'


def _state(name, static_kwargs, variables, components=None, version=4):
    return dict(
        version=version,
        name=name,
        static_kwargs=static_kwargs,
        components=components or {},
        build_module_src='import os\nos.system("touch /tmp/sg3viz_tf_src_was_executed")\n',
        build_func_name=f'training.networks_stylegan2.{name}_main',
        variables=variables,
    )


@pytest.fixture
def tf_module(monkeypatch):
    pkg = types.ModuleType('dnnlib.tflib')
    mod = types.ModuleType('dnnlib.tflib.network')
    mod.Network = _FakeTFNetwork
    monkeypatch.setitem(sys.modules, 'dnnlib.tflib', pkg)
    monkeypatch.setitem(sys.modules, 'dnnlib.tflib.network', mod)
    return mod


def _randomize(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, t in list(module.named_parameters()) + list(module.named_buffers()):
            if t.dtype.is_floating_point and t.ndim <= 4 and 'resample_filter' not in _:
                t.copy_(torch.randn(t.shape, generator=g) * (0.5 if t.ndim <= 1 else 1.0))
    return module


def make_nets(c_dim=0, architecture='skip', d_architecture='resnet'):
    G = Generator(
        z_dim=Z, c_dim=c_dim, w_dim=Z, img_resolution=RES, img_channels=3, mapping_kwargs=dict(num_layers=2),
        channel_base=2 * FMAP_BASE, channel_max=FMAP_MAX, num_fp16_res=0, conv_clamp=None, architecture=architecture,
    )  # fmt: skip
    D = Discriminator(
        c_dim=c_dim, img_resolution=RES, img_channels=3, architecture=d_architecture, channel_base=2 * FMAP_BASE,
        channel_max=FMAP_MAX, num_fp16_res=0, conv_clamp=None, mapping_kwargs=dict(num_layers=0, lr_multiplier=0.1),
    )  # fmt: skip
    return _randomize(G, 1).eval(), _randomize(D, 2).eval()


def write_tf_pickle(path, G, D, *, c_dim=0, architecture='skip', d_architecture='resnet', lod=False, g_extra=None):
    kw = dict(
        resolution=RES, num_channels=3, label_size=c_dim, latent_size=Z, dlatent_size=Z, fmap_base=FMAP_BASE,
        fmap_max=FMAP_MAX, mapping_layers=2, architecture=architecture, num_fp16_res=0, conv_clamp=None,
        truncation_psi=0.5, is_training=False,
    )  # fmt: skip
    kw.update(g_extra or {})

    def gen(name):
        comps = tf_generator_vars(G, lod=lod)
        mapping = _FakeTFNetwork(_state('G_mapping', dict(kw, dlatent_broadcast=G.num_ws), comps['mapping']))
        synthesis = _FakeTFNetwork(_state('G_synthesis', dict(kw), comps['synthesis']))
        return _FakeTFNetwork(_state(name, kw, comps[''], {'mapping': mapping, 'synthesis': synthesis}))

    d_kw = dict(kw, architecture=d_architecture, mbstd_group_size=4, mapping_layers=0)
    d_kw.pop('truncation_psi')
    d = _FakeTFNetwork(_state('D', d_kw, tf_discriminator_vars(D, lod=lod)))
    with open(path, 'wb') as f:
        pickle.dump((gen('G'), d, gen('Gs')), f, protocol=3)
    return path


def _outputs(G, D, c_dim=0):
    torch.manual_seed(0)
    z = torch.randn([2, Z])
    c = torch.nn.functional.one_hot(torch.tensor([0, 2]), c_dim).float() if c_dim else torch.zeros([2, 0])
    with torch.no_grad():
        img = G(z, c, truncation_psi=0.7, noise_mode='const')
        logits = D(img, c) if D is not None else None
    return img, logits


# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    'c_dim, arch, d_arch, lod',
    [
        (0, 'skip', 'resnet', False),
        (3, 'skip', 'resnet', False),
        (0, 'resnet', 'resnet', False),
        (0, 'orig', 'orig', True),
    ],
)
def test_tf_pickle_converts_to_same_outputs(tmp_path, tf_module, c_dim, arch, d_arch, lod, close_report):
    G, D = make_nets(c_dim, arch, d_arch)
    path = write_tf_pickle(tmp_path / 'tf.pkl', G, D, c_dim=c_dim, architecture=arch, d_architecture=d_arch, lod=lod)
    marker = pathlib.Path('/tmp/sg3viz_tf_src_was_executed')
    marker.unlink(missing_ok=True)
    data = load_network_pkl(path)
    assert not marker.exists(), 'build_module_src must never run'
    assert data['training_set_kwargs'] is None and data['augment_pipe'] is None
    for key in ('G', 'G_ema', 'D'):
        assert data[key] is not None, key
    img, logits = _outputs(G, D, c_dim)
    img2, logits2 = _outputs(data['G_ema'], data['D'], c_dim)
    close_report(img2, img, atol=1e-5, name='G_ema image')
    close_report(logits2, logits, atol=1e-4, name='D logits')
    close_report(_outputs(data['G'], None, c_dim)[0], img, atol=1e-5, name='G image')
    assert data['G_ema'].num_ws == G.num_ws and data['G_ema'].c_dim == c_dim


def test_trust_mode_reads_tf_pickles_safely_too(tmp_path, tf_module):
    G, D = make_nets()
    path = write_tf_pickle(tmp_path / 'tf.pkl', G, D)
    data = load_network_pkl(path, trust=True)
    assert type(data['G_ema']).__name__ == 'Generator'


def test_convert_network_cli_round_trip(tmp_path, tf_module, close_report):
    G, D = make_nets()
    src = write_tf_pickle(tmp_path / 'tf.pkl', G, D)
    dest = tmp_path / 'converted.pkl'
    r = subprocess.run(
        [sys.executable, str(REPO / 'convert_network.py'), '--source', str(src), '--dest', str(dest), '--force-fp16'],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert dest.is_file()
    data = load_network_pkl(dest)  # our reference-format pickle, safe mode
    assert set(data) >= {'G', 'D', 'G_ema', 'training_set_kwargs', 'augment_pipe'}
    assert data['G_ema'].synthesis.num_fp16_res == 4
    img, logits = _outputs(G, D)
    img2, logits2 = _outputs(data['G_ema'], data['D'])
    close_report(img2, img, atol=1e-5, name='converted image')  # fp16 is CUDA-only: identical on the CPU
    close_report(logits2, logits, atol=1e-4, name='converted logits')
    with open(dest, 'rb') as f:
        head = f.read(4096)
    assert b'torch_utils.persistence' in head and b'_reconstruct_persistent_obj' in head
    # Refuses to overwrite without --overwrite.
    r = subprocess.run(
        [sys.executable, str(REPO / 'convert_network.py'), '--source', str(src), '--dest', str(dest)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode != 0 and 'exists' in r.stderr


def test_stylegan1_pickle_is_refused_by_name(tmp_path, tf_module):
    G, D = make_nets()
    path = tmp_path / 'sg1.pkl'
    net = _FakeTFNetwork(_state('G', dict(resolution=RES), [], version=3))
    with open(path, 'wb') as f:
        pickle.dump((net, net, net), f)
    with pytest.raises(LoadError, match='StyleGAN1'):
        load_network_pkl(path)


def test_unknown_static_kwarg_is_named(tmp_path, tf_module):
    G, D = make_nets()
    path = write_tf_pickle(tmp_path / 'tf.pkl', G, D, g_extra=dict(mystery_knob=3))
    with pytest.raises(LoadError, match="'mystery_knob'"):
        load_network_pkl(path)


def test_missing_variable_is_named(tmp_path, tf_module):
    G, D = make_nets()
    path = write_tf_pickle(tmp_path / 'tf.pkl', G, D)
    with open(path, 'rb') as f:
        tup = pickle.load(f)
    gs_state = tup[2].__getstate__()
    synth = gs_state['components']['synthesis'].__getstate__()
    synth['variables'] = [(n, v) for n, v in synth['variables'] if n != '8x8/Conv1/mod_weight']
    with open(path, 'wb') as f:
        pickle.dump(tup, f)
    with pytest.raises(LoadError, match="'synthesis/8x8/Conv1/mod_weight'"):
        load_network_pkl(path)


def test_label_concat_is_refused(tmp_path, tf_module):
    G, D = make_nets()
    path = write_tf_pickle(tmp_path / 'tf.pkl', G, D)
    with open(path, 'rb') as f:
        tup = pickle.load(f)
    for net in (tup[0], tup[2]):
        mapping = net.__getstate__()['components']['mapping'].__getstate__()
        mapping['variables'].append(('LabelConcat/weight', np.zeros([3, Z], np.float32)))
    with open(path, 'wb') as f:
        pickle.dump(tup, f)
    with pytest.raises(LoadError, match='LabelConcat'):
        load_network_pkl(path)


def test_tf_pickle_with_foreign_global_is_refused(tmp_path, tf_module):
    G, D = make_nets()
    path = write_tf_pickle(tmp_path / 'tf.pkl', G, D)
    with open(path, 'rb') as f:
        tup = pickle.load(f)
    tup[2].__getstate__()['static_kwargs']['evil'] = types.SimpleNamespace(a=1)
    with open(path, 'wb') as f:
        pickle.dump(tup, f)
    with pytest.raises(UnsafePickleError) as e:
        load_network_pkl(path)
    assert 'types.SimpleNamespace' in e.value.names


def test_gen_images_opens_tf_pickle(tmp_path, tf_module):
    G, D = make_nets()
    path = write_tf_pickle(tmp_path / 'tf.pkl', G, D)
    r = subprocess.run(
        [sys.executable, str(REPO / 'gen_images.py'), '--network', str(path), '--seeds', '1', '--outdir',
         str(tmp_path / 'out')],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'out' / 'seed0001.png').is_file()


def test_renderer_opens_tf_pickle(tmp_path, tf_module):
    from engine.protocol import RenderRequest
    from engine.renderer import Renderer

    G, D = make_nets()
    path = write_tf_pickle(tmp_path / 'tf.pkl', G, D)
    res = Renderer('cpu').render(RenderRequest(pkl=str(path), device='cpu', w0_seeds=((3, 1.0),)))
    assert res.error is None, res.error
    assert res.image.shape == (RES, RES, 3) and res.net.arch == 'stylegan2' and res.net.num_ws == G.num_ws
