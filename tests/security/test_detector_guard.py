"""Issue 11 item 1: a detector (or VGG16) file is a TorchScript program; it never runs unless trusted or pinned."""

from __future__ import annotations

import warnings

import pytest
import torch

from engine import torchscript_guard
from metrics import metric_utils


class _Writer(torch.nn.Module):
    """Looks like a detector; its forward maps a file writable (creating it): what a hostile archive can do."""

    def __init__(self, target: str):
        super().__init__()
        self.target = target

    def forward(self, x: torch.Tensor, return_features: bool = True) -> torch.Tensor:
        written = torch.from_file(self.target, shared=True, size=16, dtype=torch.uint8)
        return x.float().mean(dim=[2, 3]) + written.float().sum() * 0


def _hostile(tmp_path, bare: bool):
    marker = tmp_path / 'written-by-detector'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        scripted = torch.jit.script(_Writer(str(marker)))
        path = tmp_path / ('detector.pt' if bare else 'inception-2015-12-05.pkl')
        if bare:
            torch.jit.save(scripted, str(path))
        else:
            metric_utils.save_detector_pkl(scripted, path)
    return path, marker


@pytest.mark.parametrize('bare', [False, True], ids=['pickle', 'bare-archive'])
def test_untrusted_detector_is_never_loaded(tmp_path, monkeypatch, bare):
    monkeypatch.delenv(torchscript_guard.TRUSTED_SHA256_ENV, raising=False)
    path, marker = _hostile(tmp_path, bare)
    digest = torchscript_guard.file_sha256(path)
    with pytest.raises(metric_utils.MetricError) as info:
        metric_utils.load_detector(str(path), cache_dir=tmp_path / 'cache')
    text = str(info.value)
    assert digest in text and '--trust' in text and torchscript_guard.TRUSTED_SHA256_ENV in text
    assert 'TorchScript program' in text
    assert not marker.exists()


def test_pinned_or_trusted_detector_runs_and_the_threat_is_real(tmp_path, monkeypatch):
    """With the digest pinned (or --trust) the same archive loads and, when run, writes its file: the guard above is
    what stands between a downloaded detector and the disk."""
    path, marker = _hostile(tmp_path, bare=False)
    monkeypatch.setenv(torchscript_guard.TRUSTED_SHA256_ENV, 'ab' * 32 + ',' + torchscript_guard.file_sha256(path))
    detector, _ = metric_utils.load_detector(str(path), cache_dir=tmp_path / 'cache')
    assert not marker.exists()
    metric_utils.run_detector(detector, torch.zeros([1, 3, 8, 8], dtype=torch.uint8))
    assert marker.exists()
    monkeypatch.delenv(torchscript_guard.TRUSTED_SHA256_ENV)
    with pytest.raises(metric_utils.MetricError, match='not a published file'):  # the memoised copy is not reused
        metric_utils.load_detector(str(path), cache_dir=tmp_path / 'cache')
    metric_utils.load_detector(str(path), cache_dir=tmp_path / 'cache', trust=True)


def test_guard_rules(tmp_path, monkeypatch):
    path = tmp_path / 'vgg16.pt'
    path.write_bytes(b'PK\x03\x04 not really')
    monkeypatch.delenv(torchscript_guard.TRUSTED_SHA256_ENV, raising=False)
    with pytest.raises(torchscript_guard.UntrustedCodeError, match='VGG16 feature file'):
        torchscript_guard.check_torchscript_allowed(path, trust=False, what='VGG16 feature file')
    digest = torchscript_guard.check_torchscript_allowed(path, trust=True)
    assert digest == torchscript_guard.file_sha256(path)
    monkeypatch.setenv(torchscript_guard.TRUSTED_SHA256_ENV, digest.upper())
    assert torchscript_guard.check_torchscript_allowed(path, trust=False) == digest
    monkeypatch.setenv(torchscript_guard.TRUSTED_SHA256_ENV, 'not-a-digest')
    with pytest.raises(torchscript_guard.LoadError, match='64-digit hex'):
        torchscript_guard.check_torchscript_allowed(path, trust=False)
    path.write_bytes(b'PK\x03\x04 changed')  # a pinned file that changes is refused again
    monkeypatch.setenv(torchscript_guard.TRUSTED_SHA256_ENV, digest)
    with pytest.raises(torchscript_guard.UntrustedCodeError):
        torchscript_guard.check_torchscript_allowed(path, trust=False)
