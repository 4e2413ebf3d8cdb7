"""Construction and interface tests for training.networks_stylegan2 / networks_stylegan3.

Oracle: docs/compatibility.md §5 (exact parameter counts, num_ws) and section 3 (interface).
"""

from __future__ import annotations

import ast
import pathlib
import pickle

import numpy as np
import pytest
import torch

from training import networks_stylegan2 as n2
from training import networks_stylegan3 as n3

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _single_thread_forked_rng():
    """These networks are tiny: one intra-op thread is faster than contended threads on a shared CPU. The tests
    seed torch's RNG; the global RNG state and thread count are restored afterwards."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(num_threads)


# ----------------------------------------------------------------------------
# docs/compatibility.md §5.

# (cfg, res, channel_base, channel_max, G params, D params, num_ws, synthesis children; '...' = elided)
SECTION5 = [
    ('stylegan3-t', 1024, 32768, 512, 22_313_167, 29_012_513, 16,
     'input L0_36_512 L1_36_512 L2_52_512 L3_52_512 L4_84_512 L5_148_512 L6_148_512 L7_276_323 L8_276_203 '
     'L9_532_128 L10_1044_81 L11_1044_51 L12_1044_32 L13_1024_32 L14_1024_3'),
    ('stylegan3-t', 256, 32768, 512, 28_472_133, 28_864_129, 16,
     'input L0_36_512 L1_36_512 L2_36_512 L3_52_512 L4_52_512 L5_84_512 L6_84_512 L7_148_512 L8_148_512 '
     'L9_148_362 L10_276_256 L11_276_181 L12_276_128 L13_256_128 L14_256_3'),
    ('stylegan3-r', 1024, 32768, 512, 15_093_151, 29_012_513, 16,
     'input L0_36_1024 ... L10_1044_161 L11_1044_102 L12_1044_64 L13_1024_64 L14_1024_3'),
    ('stylegan3-r', 256, 16384, 512, 15_779_565, 24_001_089, 16,
     'input L0_36_1024 L1_36_1024 L2_36_1024 L3_52_1024 L4_52_1024 L5_84_1024 L6_84_1024 L7_148_724 L8_148_512 '
     'L9_148_362 L10_276_256 L11_276_181 L12_276_128 L13_256_128 L14_256_3'),
    ('stylegan2', 1024, 32768, 512, 30_370_060, 29_012_513, 18, 'b4 b8 b16 b32 b64 b128 b256 b512 b1024'),
    ('stylegan2', 256, 16384, 512, 24_767_458, 24_001_089, 14, 'b4 b8 b16 b32 b64 b128 b256'),
    ('stylegan3-t', 64, 8192, 256, 9_352_162, 5_854_593, 16, 'input L0_36_256 ... L13_64_128 L14_64_3'),
    ('stylegan2', 64, 8192, 256, 8_389_272, 5_854_593, 10, 'b4 b8 b16 b32 b64'),
]  # fmt: skip


class _NoRandomInit(torch.overrides.TorchFunctionMode):
    """Makes torch.randn / torch.rand return uninitialised memory: counting parameters of the 1024 px configs then
    costs milliseconds instead of seconds (values are irrelevant for counts and names)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.randn, torch.rand):
            return torch.empty(*args, **kwargs)
        return func(*args, **kwargs)


def _build(cfg: str, res: int, cbase: int, cmax: int, c_dim: int = 0):
    """Builds (G, D) with the reference train.py preset of docs/compatibility.md §4 (z_dim = w_dim = 512)."""
    common = dict(z_dim=512, c_dim=c_dim, w_dim=512, img_resolution=res, img_channels=3)
    if cfg == 'stylegan2':
        G = n2.Generator(
            **common, channel_base=cbase, channel_max=cmax, mapping_kwargs=dict(num_layers=8),
            fused_modconv_default='inference_only',
        )  # fmt: skip
    elif cfg == 'stylegan3-t':
        G = n3.Generator(**common, channel_base=cbase, channel_max=cmax, mapping_kwargs=dict(num_layers=2))
    else:  # stylegan3-r: train.py doubles channel_base and channel_max
        G = n3.Generator(
            **common, channel_base=cbase * 2, channel_max=cmax * 2, conv_kernel=1, use_radial_filters=True,
            mapping_kwargs=dict(num_layers=2),
        )  # fmt: skip
    D = n2.Discriminator(
        c_dim=c_dim, img_resolution=res, img_channels=3, channel_base=cbase, channel_max=cmax,
        epilogue_kwargs=dict(mbstd_group_size=4),
    )  # fmt: skip
    return G, D


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('cfg,res,cbase,cmax,g_params,d_params,num_ws,children', SECTION5, ids=lambda v: str(v))
def test_section5_counts_and_children(cfg, res, cbase, cmax, g_params, d_params, num_ws, children):
    with _NoRandomInit():
        G, D = _build(cfg, res, cbase, cmax)
    assert _num_params(G) == g_params
    assert _num_params(D) == d_params
    assert G.num_ws == num_ws == G.synthesis.num_ws == G.mapping.num_ws
    names = [name for name, _ in G.synthesis.named_children()]
    if '...' in children:
        head, tail = (part.split() for part in children.split('...'))
        assert names[: len(head)] == head and names[-len(tail) :] == tail, names
        assert len(names) == 16  # input + 14 layers + ToRGB
    else:
        assert names == children.split()


# ----------------------------------------------------------------------------
# Interface (docs/compatibility.md §3) on tiny networks.


def _tiny_sg3(**kwargs):
    torch.manual_seed(0)
    return n3.Generator(
        z_dim=8, c_dim=3, w_dim=8, img_resolution=16, img_channels=3, channel_base=128, channel_max=8,
        mapping_kwargs=dict(num_layers=2), **kwargs,
    ).eval()  # fmt: skip


def _tiny_sg2(**kwargs):
    torch.manual_seed(0)
    return n2.Generator(
        z_dim=8, c_dim=3, w_dim=8, img_resolution=16, img_channels=3, channel_base=64, channel_max=8,
        mapping_kwargs=dict(num_layers=2), fused_modconv_default='inference_only', **kwargs,
    ).eval()  # fmt: skip


@pytest.mark.parametrize('make', [_tiny_sg3, _tiny_sg2], ids=['sg3', 'sg2'])
def test_generator_interface(make):
    G = make()
    assert (G.z_dim, G.c_dim, G.w_dim, G.img_resolution, G.img_channels) == (8, 3, 8, 16, 3)
    assert G.mapping.w_avg.shape == (8,)
    torch.manual_seed(1)
    z = torch.randn([2, 8])
    c = torch.nn.functional.one_hot(torch.tensor([0, 2]), 3).float()
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn([8]))
        ws = G.mapping(z, c)
        assert ws.shape == (2, G.num_ws, 8) and ws.dtype == torch.float32
        assert torch.equal(ws[:, 0], ws[:, -1])  # broadcast of one w

        # Truncation: psi=0 gives w_avg; a cutoff truncates only the first ws.
        ws0 = G.mapping(z, c, truncation_psi=0)
        assert torch.allclose(ws0, G.mapping.w_avg.expand_as(ws0))
        ws_cut = G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=3)
        assert torch.allclose(ws_cut[:, :3], G.mapping.w_avg.lerp(ws[:, :3], 0.5))
        assert torch.equal(ws_cut[:, 3:], ws[:, 3:])

        img = G(z, c, noise_mode='const')
        assert img.shape == (2, 3, 16, 16) and img.dtype == torch.float32
        assert torch.allclose(img, G.synthesis(ws, noise_mode='const'), atol=1e-6)
        # On CPU, float16 layers run in float32 whatever force_fp32 says.
        assert torch.equal(
            G.synthesis(ws, noise_mode='const', force_fp32=False), G.synthesis(ws, force_fp32=True, noise_mode='const')
        )


def test_update_emas_tracks_statistics():
    G = _tiny_sg3(magnitude_ema_beta=0.5)
    z, c = torch.randn([2, 8]), torch.eye(3)[:2]
    layer = getattr(G.synthesis, G.synthesis.layer_names[0])
    w_avg, mag = G.mapping.w_avg.clone(), layer.magnitude_ema.clone()
    with torch.no_grad():
        G(z, c)
        assert torch.equal(G.mapping.w_avg, w_avg) and torch.equal(layer.magnitude_ema, mag)
        G(z, c, update_emas=True)
    assert not torch.equal(G.mapping.w_avg, w_avg)
    assert not torch.equal(layer.magnitude_ema, mag)


def test_sg3_input_transform_and_layers():
    G = _tiny_sg3()
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))
    assert G.num_ws == 16 and len(G.synthesis.layer_names) == 15
    assert G.synthesis.layer_names[-1].endswith('_16_3')
    assert any(getattr(G.synthesis, n).use_fp16 for n in G.synthesis.layer_names)
    ws = torch.randn([1, G.num_ws, 8])
    with torch.no_grad():
        img0 = G.synthesis(ws)
        G.synthesis.input.transform.copy_(torch.tensor([[0.0, 1, 0.1], [-1, 0, 0], [0, 0, 1]]))
        img1 = G.synthesis(ws)
    assert not torch.allclose(img0, img1)


def test_sg2_noise_modes():
    G = _tiny_sg2()
    ws = torch.randn([2, G.num_ws, 8])
    with torch.no_grad():
        for block in [G.synthesis.b8, G.synthesis.b16]:
            block.conv0.noise_strength.fill_(0.5)
        const = G.synthesis(ws, noise_mode='const')
        assert torch.equal(const, G.synthesis(ws, noise_mode='const'))
        torch.manual_seed(3)
        rand_a = G.synthesis(ws, noise_mode='random')
        torch.manual_seed(3)
        assert torch.equal(rand_a, G.synthesis(ws, noise_mode='random'))
        assert not torch.allclose(rand_a, G.synthesis(ws, noise_mode='random'))
        assert not torch.allclose(const, G.synthesis(ws, noise_mode='none'))
        with pytest.raises(ValueError, match='noise_mode must be'):
            G.synthesis(ws, noise_mode='bogus')


@pytest.mark.parametrize('make', [_tiny_sg3, _tiny_sg2], ids=['sg3', 'sg2'])
def test_training_step_backward(make):
    """G and D are differentiable end to end in training mode (SG2: non-fused modconv path with noise)."""
    G = make().train()
    D = n2.Discriminator(c_dim=3, img_resolution=16, img_channels=3, channel_base=128, channel_max=16).train()
    z, c = torch.randn([4, 8]), torch.eye(3)[[0, 1, 2, 0]]
    logits = D(G(z, c, update_emas=True), c)
    torch.nn.functional.softplus(logits).mean().backward()
    for name, param in list(G.named_parameters()) + list(D.named_parameters()):
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_sg2_accepts_nested_synthesis_kwargs():
    """StyleGAN2-ADA records `synthesis_kwargs` as a nested dict in init_kwargs."""
    G = n2.Generator(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
        synthesis_kwargs=dict(channel_base=64, channel_max=8, num_fp16_res=0),
    )  # fmt: skip
    assert G.synthesis.b8.conv1.out_channels == 8 and G.synthesis.num_fp16_res == 0


@pytest.mark.parametrize('c_dim', [0, 5])
def test_discriminator_interface(c_dim):
    torch.manual_seed(0)
    D = n2.Discriminator(c_dim=c_dim, img_resolution=16, img_channels=3, channel_base=128, channel_max=16).eval()
    img = torch.randn([4, 3, 16, 16])
    c = torch.eye(5)[:4] if c_dim else torch.zeros([4, 0])
    with torch.no_grad():
        logits = D(img, c)
    assert logits.shape == (4, 1) and logits.dtype == torch.float32 and torch.isfinite(logits).all()
    assert hasattr(D, 'mapping') == (c_dim > 0)


@pytest.mark.parametrize('make', [_tiny_sg3, _tiny_sg2], ids=['sg3', 'sg2'])
def test_pickle_round_trip(make):
    G = make()
    G2 = pickle.loads(pickle.dumps(G))
    assert type(G2).__name__ == 'Generator' and G2.init_kwargs == G.init_kwargs
    ws = torch.randn([1, G.num_ws, 8])
    with torch.no_grad():
        assert torch.equal(G.synthesis(ws, noise_mode='const'), G2.synthesis(ws, noise_mode='const'))


# ----------------------------------------------------------------------------
# The network sources are embedded into pickles: only the imports of docs/compatibility.md §2 are allowed.

ALLOWED_IMPORTS = {
    'networks_stylegan2.py': {
        '__future__', 'numpy', 'torch', 'torch_utils.misc', 'torch_utils.persistence', 'torch_utils.ops.bias_act',
        'torch_utils.ops.conv2d_resample', 'torch_utils.ops.fma', 'torch_utils.ops.upfirdn2d',
    },
    'networks_stylegan3.py': {
        '__future__', 'numpy', 'scipy.signal', 'scipy.optimize', 'torch', 'torch_utils.misc',
        'torch_utils.persistence', 'torch_utils.ops.bias_act', 'torch_utils.ops.conv2d_gradfix',
        'torch_utils.ops.filtered_lrelu',
    },
}  # fmt: skip


@pytest.mark.parametrize('filename', sorted(ALLOWED_IMPORTS))
def test_network_sources_import_only_reference_modules(filename):
    tree = ast.parse((REPO / 'training' / filename).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                full = f'{node.module}.{alias.name}'
                imported.add(full if full.startswith('torch_utils') else node.module)
    assert imported <= ALLOWED_IMPORTS[filename], imported - ALLOWED_IMPORTS[filename]
    # Every persistent network module is decorated.
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            assert any(ast.unparse(d) == 'persistence.persistent_class' for d in node.decorator_list), node.name


def test_lowpass_filter_design():
    """Alias-Free GAN App. C: Kaiser low-pass with unit DC gain; radial variant sums to one and is symmetric."""
    f = n3.SynthesisLayer.design_lowpass_filter(numtaps=12, cutoff=8, width=4, fs=32)
    assert f.shape == (12,) and abs(float(f.sum()) - 1) < 1e-6 and torch.allclose(f, f.flip(0))
    fr = n3.SynthesisLayer.design_lowpass_filter(numtaps=12, cutoff=8, width=4, fs=32, radial=True)
    assert fr.shape == (12, 12) and abs(float(fr.sum()) - 1) < 1e-6 and torch.allclose(fr, fr.t())
    assert n3.SynthesisLayer.design_lowpass_filter(numtaps=1, cutoff=8, width=4, fs=32) is None
    # Response: ~1 in the passband, small in the stopband (cutoff + half-width = 10).
    resp = np.abs(np.fft.rfft(f.numpy(), 256))
    freqs = np.fft.rfftfreq(256, 1 / 32)
    assert resp[freqs <= 4].min() > 0.9 and resp[freqs >= 12].max() < 0.1, (
        resp[freqs <= 4].min(),
        resp[freqs >= 12].max(),
    )
