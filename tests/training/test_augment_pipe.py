"""AugmentPipe (ADA, arXiv 2006.06676 Appendix B): identity at p=0, shapes, exact blits, resampling, gradients."""

import pickle

import numpy as np
import pytest
import torch

from training import augment
from training.augment import AUGPIPE_SPECS, AugmentPipe


def _smooth_images(n=4, c=3, res=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    low = torch.randn([n, c, res // 4, res // 4], generator=g)
    return torch.nn.functional.interpolate(low, size=res, mode='bicubic', align_corners=False)


@pytest.mark.parametrize('spec', ['bgc', 'bgcfnc'])
def test_identity_at_p0(spec):
    pipe = AugmentPipe(**AUGPIPE_SPECS[spec])
    pipe.p.zero_()
    x = torch.randn([3, 3, 16, 16])
    assert torch.equal(pipe(x), x)


@pytest.mark.parametrize('channels', [1, 3])
def test_shapes_preserved_all_transforms(channels):
    torch.manual_seed(0)
    pipe = AugmentPipe(**AUGPIPE_SPECS['bgcfnc'])
    pipe.p.fill_(1)
    x = torch.randn([4, channels, 16, 16])
    y = pipe(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    assert not torch.equal(y, x)
    y = pipe(x, debug_percentile=0.7)  # Every transformation at one quantile.
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_xflip_exact_at_p1():
    torch.manual_seed(1)
    pipe = AugmentPipe(xflip=1)
    pipe.p.fill_(1)
    x = torch.randn([32, 3, 8, 8])
    y = pipe(x)
    flipped = [torch.equal(y[i], x[i].flip(2)) for i in range(len(x))]
    same = [torch.equal(y[i], x[i]) for i in range(len(x))]
    assert all(f or s for f, s in zip(flipped, same))
    assert any(flipped) and any(same)  # Each with probability 1/2 (32 samples).


def test_blits_are_exact_pixel_moves():
    torch.manual_seed(2)
    pipe = AugmentPipe(xflip=1, rotate90=1, xint=1)
    pipe.p.fill_(1)
    x = torch.randn([8, 3, 16, 16])
    y = pipe(x)
    for i in range(len(x)):  # Pixels are moved (or mirrored by the reflection padding), never interpolated.
        assert set(np.round(y[i].numpy().ravel(), 6)) <= set(np.round(x[i].numpy().ravel(), 6))


def test_geometric_resampling_is_aligned(monkeypatch):
    # A one-pixel translation through the upsample / grid_sample / downsample path matches torch.roll inside.
    x = _smooth_images()
    pipe = AugmentPipe(xfrac=1)
    pipe.p.fill_(1)

    def one_pixel(N, p, device, dp):
        return augment._translate2d(torch.full([N], -1 / 32), torch.zeros([N]), device)

    monkeypatch.setattr(pipe, '_geometric_matrix', one_pixel)
    y = pipe(x)
    ref = torch.roll(x, 1, dims=3)
    err = (y - ref)[..., 4:-4, 4:-4].abs().max().item()
    assert err < 0.05 * x.abs().max().item(), err


def test_color_keeps_grey_grey():
    # Hue rotation and saturation act around the luma axis: grey pixels stay grey.
    torch.manual_seed(3)
    pipe = AugmentPipe(hue=1, saturation=1)
    pipe.p.fill_(1)
    grey = torch.rand([4, 1, 8, 8]).expand(4, 3, 8, 8) * 2 - 1
    y = pipe(grey)
    assert (y - y.mean(dim=1, keepdim=True)).abs().max() < 1e-5


def test_brightness_contrast_shift_and_scale():
    torch.manual_seed(4)
    pipe = AugmentPipe(brightness=1)
    pipe.p.fill_(1)
    x = torch.randn([4, 3, 8, 8])
    d = pipe(x) - x
    assert torch.allclose(d, d[:, :1, :1, :1].expand_as(d), atol=1e-5)  # One offset per sample.


def test_differentiable_first_and_second_order():
    torch.manual_seed(5)
    pipe = AugmentPipe(**AUGPIPE_SPECS['bgcfnc'])
    pipe.p.fill_(0.9)
    x = torch.randn([4, 3, 16, 16], requires_grad=True)
    (g,) = torch.autograd.grad(pipe(x).square().sum(), [x], create_graph=True)
    assert g.shape == x.shape and torch.isfinite(g).all() and g.abs().sum() > 0
    g.square().sum().backward()  # R1 differentiates through the pipeline twice.
    assert torch.isfinite(x.grad).all()


def test_pickle_roundtrip_keeps_p_and_kwargs():
    pipe = AugmentPipe(**AUGPIPE_SPECS['bgc'])
    pipe.p.fill_(0.25)
    clone = pickle.loads(pickle.dumps(pipe))
    assert float(clone.p) == 0.25
    assert clone.init_kwargs == pipe.init_kwargs


def test_bad_inputs_raise():
    pipe = AugmentPipe(xflip=1)
    with pytest.raises(ValueError, match='channels'):
        pipe(torch.zeros([1, 2, 8, 8]))
    with pytest.raises(ValueError, match='imgfilter_bands'):
        AugmentPipe(imgfilter_bands=[1, 1])
