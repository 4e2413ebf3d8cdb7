"""A numpy-only stand-in for ``engine.renderer.Renderer`` for the GUI tests (never shipped in the app).

The GUI tests run the real ``engine.async_renderer.AsyncRenderer`` (stamps, dedup, render process, restart) with
``renderer='tests.viz.fake_renderer:FakeRenderer'`` (see ``tests/viz/fake_visualizer.py``), so only the torch part is
faked. It renders deterministic placeholder images from the request (seed blend, truncation, transform,
layer/channel selection, an FFT view) and mimics the real renderer's error behaviour: a missing path, a file that is
not a network, a pickle that safe mode refuses (content starting with ``UNSAFE``), an unavailable device
(``'cuda'`` / ``'mps'``: this stand-in has only a CPU) and an exception inside synthesis (``class_idx == 666``).
Files whose content starts with ``FAKENET`` load; ``None`` is the bundled default. ``SG3VIZ_FAKE_DELAY_SEC`` in the
environment slows every render down (seconds).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np

from engine.protocol import LayerInfo, NetInfo, RenderRequest, RenderResult

_LAYERS = (
    ('input', 256, 36),
    ('L0_36_256', 256, 36),
    ('L1_36_256', 256, 36),
    ('L2_52_256', 256, 52),
    ('L3_52_256', 256, 52),
    ('L4_84_256', 256, 84),
    ('L5_84_128', 128, 84),
    ('L6_64_64', 64, 64),
    ('output', 3, 64),
)


def _fake_net(pkl: str | None) -> NetInfo:
    return NetInfo(
        pkl=pkl or '',
        resolved_path=os.path.abspath(pkl) if pkl else 'models/default.pkl',
        arch='stylegan3',
        img_resolution=64,
        img_channels=3,
        z_dim=64,
        c_dim=0,
        w_dim=64,
        num_ws=16,
        has_noise=False,
        has_input_transform=True,
        config='stylegan3-t',
    )


def _colormap(x: np.ndarray) -> np.ndarray:
    """x in [0, 1] -> uint8 RGB (a simple blue-yellow map)."""
    x = np.clip(x, 0, 1)[..., None]
    lo, mid, hi = np.array([0.05, 0.05, 0.3]), np.array([0.8, 0.2, 0.4]), np.array([1.0, 0.95, 0.5])
    rgb = np.where(x < 0.5, lo + (mid - lo) * (x * 2), mid + (hi - mid) * (x * 2 - 1))
    return (rgb * 255 + 0.5).astype(np.uint8)


class FakeRenderer:
    """Fake of ``engine.renderer.Renderer``: ``try_render(request) -> RenderResult`` (never "still loading")."""

    def __init__(self, device: str = 'cpu') -> None:
        self.default_device = device
        self.delay_sec = float(os.environ.get('SG3VIZ_FAKE_DELAY_SEC', '0') or 0)
        self.net: NetInfo | None = None

    def _load(self, req: RenderRequest) -> str | tuple[str, tuple[str, ...]] | None:
        if req.pkl is None:
            self.net = _fake_net(None)
            return None
        if not os.path.exists(req.pkl):
            return f'No such file or directory: {req.pkl}'
        with open(req.pkl, 'rb') as f:
            head = f.read(16)
        if head.startswith(b'UNSAFE') and not req.trust:
            return (
                'Safe mode refused the pickle (it references code outside the allow-list)',
                ('os.system', 'builtins.eval'),
            )
        if head.startswith((b'FAKENET', b'UNSAFE')):
            self.net = _fake_net(req.pkl)
            return None
        return f'{req.pkl} is not a network pickle (corrupt or wrong file)'

    def try_render(self, req: RenderRequest) -> RenderResult:
        res = self.render(req)
        return dataclasses.replace(res, source=req.pkl, available_devices=('cpu',))

    def render(self, req: RenderRequest) -> RenderResult:
        t0 = time.perf_counter()
        if self.delay_sec:
            time.sleep(self.delay_sec)
        device = self.default_device if req.device in ('', 'auto') else req.device
        if device != 'cpu' and device != 'auto':
            msg = f"pick_device(): device {device!r} is not available on this machine; use one of ('cpu',)"
            return RenderResult(stamp=req.stamp, error=msg, load_failed=True, device='')
        if self.net is None or self.net.pkl != (req.pkl or ''):
            err = self._load(req)
            if err is not None:
                msg, names = (err, ()) if isinstance(err, str) else err
                return RenderResult(
                    stamp=req.stamp, error=msg, refused_names=names, net=None, device='cpu', load_failed=True
                )
        net = self.net
        layers = tuple(LayerInfo(n, (1, c, s, s), 'float32') for n, c, s in _LAYERS)
        if req.class_idx == 666:
            return RenderResult(
                stamp=req.stamp,
                error='RuntimeError: exception inside synthesis (fake)',
                layers=layers,
                net=net,
                device='cpu',
            )
        res = 64
        base = np.zeros((8, 8, 3))
        for seed, weight in req.w0_seeds:
            base += weight * np.random.RandomState(seed).randn(8, 8, 3)
        if req.stylemix_idx:
            base = 0.5 * base + 0.5 * np.random.RandomState(req.stylemix_seed).randn(8, 8, 3)
        base *= req.trunc_psi
        img = np.kron(base, np.ones((res // 8, res // 8, 1)))
        yy, xx = np.mgrid[0:res, 0:res] / res
        img += 0.5 * np.sin(2 * math.pi * (xx + yy))[..., None]
        if req.input_transform is not None and not req.untransform:
            m = np.asarray(req.input_transform)
            img = np.roll(img, (int(round(m[1, 2] * res)), int(round(m[0, 2] * res))), axis=(0, 1))
        img = img * 10 ** (req.img_scale_db / 20)
        if req.layer_name not in (None, 'output'):
            ch = img[..., (req.base_channel % 3)]
            img = np.stack([ch] * 3, axis=-1) if req.sel_channels == 1 else np.roll(img, req.base_channel, axis=2)
        if req.img_normalize:
            img = (img - img.mean()) / (img.std() + 1e-8)
        img_u8 = np.clip(img * 64 + 128, 0, 255).astype(np.uint8)
        fft = None
        if req.fft_show:
            g = img.mean(axis=2)
            spec = np.abs(np.fft.fftshift(np.fft.fft2(g - g.mean()))) ** 2
            db = 10 * np.log10(spec / (spec.mean() + 1e-12) + 1e-12)
            fft = _colormap(db / (2 * req.fft_range_db) + 0.5)
        stats = {
            'mean': (float(img.mean()), float(img.mean())),
            'std': (float(img.std()), float(img.std())),
            'max': (float(np.abs(img).max()), float(np.abs(img).max())),
        }
        ms = (time.perf_counter() - t0) * 1e3
        return RenderResult(
            stamp=req.stamp,
            image=img_u8,
            fft=fft,
            layers=layers,
            stats=stats,
            net=net,
            render_ms=ms,
            impl={'filtered_lrelu': 'fake', 'upfirdn2d': 'fake'},
            device='cpu',
        )
