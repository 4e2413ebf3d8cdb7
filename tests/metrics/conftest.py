"""Fixtures of the metrics tests: tiny stub generators (exactly equivariant or not) and a tiny TorchScript detector."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch


class StubInput(torch.nn.Module):
    """Holds the StyleGAN3-style input transform buffer (the inverse of the user's transform)."""

    def __init__(self):
        super().__init__()
        self.register_buffer('transform', torch.eye(3))


class StubSynthesis(torch.nn.Module):
    """Sums of sinusoids (Fourier features below 0.3 cycles/pixel) sampled at M x, M = input.transform.

    Exactly equivariant by construction; with `fixed_pattern` it adds a sinusoid that ignores the transform
    (position-dependent, hence not equivariant).
    """

    def __init__(self, img_resolution: int, num_freqs: int, fixed_pattern: bool, seed: int = 0):
        super().__init__()
        rng = np.random.RandomState(seed)
        radius = rng.uniform(0.05, 0.3, size=num_freqs)
        angle = rng.uniform(0, 2 * math.pi, size=num_freqs)
        freqs = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1) * img_resolution  # Per image.
        self.register_buffer('freqs', torch.tensor(freqs, dtype=torch.float32))
        self.register_buffer('mix', torch.tensor(rng.randn(3, num_freqs) / math.sqrt(num_freqs), dtype=torch.float32))
        self.input = StubInput()
        self.img_resolution = img_resolution
        self.num_freqs = num_freqs
        self.fixed_pattern = fixed_pattern

    def forward(self, ws: torch.Tensor, noise_mode: str = 'const', **_kwargs) -> torch.Tensor:
        res = self.img_resolution
        coords = (torch.arange(res, dtype=torch.float64) + 0.5) / res - 0.5
        gy, gx = torch.meshgrid(coords, coords, indexing='ij')
        m = self.input.transform.to(torch.float64)
        x = m[0, 0] * gx + m[0, 1] * gy + m[0, 2]
        y = m[1, 0] * gx + m[1, 1] * gy + m[1, 2]
        phases = ws[:, 0, : self.num_freqs].to(torch.float64)  # [N, F]
        f = self.freqs.to(torch.float64)
        arg = 2 * math.pi * (f[:, 0, None, None] * x + f[:, 1, None, None] * y)  # [F, H, W]
        feats = torch.sin(arg[None] + phases[:, :, None, None])  # [N, F, H, W]
        img = torch.einsum('cf,nfhw->nchw', self.mix.to(torch.float64), feats)
        if self.fixed_pattern:
            img = img + torch.sin(2 * math.pi * 0.2 * res * gx)
        return img.to(torch.float32)


class StubMapping(torch.nn.Module):
    def __init__(self, z_dim: int, num_ws: int):
        super().__init__()
        self.fc = torch.nn.Linear(z_dim, z_dim)
        self.num_ws = num_ws
        self.register_buffer('w_avg', torch.zeros(z_dim))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        w = self.fc(z)
        return w[:, None, :].repeat(1, self.num_ws, 1)


class StubG(torch.nn.Module):
    """Follows the generator interface of docs/compatibility.md §3 (unconditional, 3 channels)."""

    def __init__(self, img_resolution: int = 32, fixed_pattern: bool = False, transform: bool = True):
        super().__init__()
        self.z_dim = self.w_dim = 16
        self.c_dim = 0
        self.num_ws = 2
        self.img_resolution = img_resolution
        self.img_channels = 3
        self.mapping = StubMapping(self.z_dim, self.num_ws)
        self.synthesis = StubSynthesis(img_resolution, num_freqs=8, fixed_pattern=fixed_pattern)
        if not transform:
            del self.synthesis.input

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs):
        return self.synthesis(self.mapping(z, c, truncation_psi, truncation_cutoff), **synthesis_kwargs)


@pytest.fixture
def stub_generator():
    """Factory `stub_generator(img_resolution=32, fixed_pattern=False, transform=True) -> StubG`."""
    torch.manual_seed(0)
    return StubG


class TinyDetector(torch.nn.Module):
    """A TorchScript-able stand-in of the Inception detector: uint8-range [N, 3, H, W] -> features [N, 16]."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, stride=2)

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = torch.nn.functional.interpolate(img.to(torch.float32) / 127.5 - 1, size=(16, 16), mode='area')
        feats = torch.relu(self.conv(x)).mean(dim=[2, 3])
        if return_features:
            return feats
        return feats.softmax(dim=1)


@pytest.fixture
def tiny_detector_pkl(tmp_path, monkeypatch):
    """Path of a pickled TorchScript TinyDetector (the reference detector file format), pinned as trusted by its
    SHA-256 in $SG3VIZ_TRUSTED_SHA256 (inherited by CLI subprocesses), as a user would pin their detector file."""
    from engine import torchscript_guard
    from metrics import metric_utils

    torch.manual_seed(0)
    path = tmp_path / 'tiny-detector.pkl'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # torch.jit.script deprecation notice.
        metric_utils.save_detector_pkl(torch.jit.script(TinyDetector()), path)
    monkeypatch.setenv(torchscript_guard.TRUSTED_SHA256_ENV, torchscript_guard.file_sha256(path))
    return path
