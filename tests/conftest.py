"""Shared test fixtures and helpers (owned by the integrator; ask before changing)."""

from __future__ import annotations

import os
import pathlib
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared'
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason='needs a CUDA GPU')
    has_cuda = _has_cuda()
    for item in items:
        if 'cuda' in item.keywords and not has_cuda:
            item.add_marker(skip_cuda)


@pytest.fixture(scope='session')
def shared_dir() -> pathlib.Path:
    """Path of ../shared (parity fixtures and datasets); skips when it is absent."""
    if not SHARED.is_dir():
        pytest.skip('../shared is not beside the checkout')
    return SHARED


@pytest.fixture(scope='session')
def parity_dir(shared_dir) -> pathlib.Path:
    return shared_dir / 'parity'


def assert_close_report(actual, expected, *, atol: float = 1e-4, rtol: float = 0.0, name: str = 'value') -> None:
    """Asserts |actual - expected| <= atol + rtol*|expected| elementwise; on failure reports the mismatch count and
    share, the largest difference and its index -- never a whole tensor."""
    a = np.asarray(actual.detach().cpu().numpy() if hasattr(actual, 'detach') else actual, dtype=np.float64)
    e = np.asarray(expected.detach().cpu().numpy() if hasattr(expected, 'detach') else expected, dtype=np.float64)
    assert a.shape == e.shape, f'{name}: shape {a.shape} != expected {e.shape}'
    diff = np.abs(a - e)
    bad = ~(diff <= atol + rtol * np.abs(e))
    if bad.any():
        idx = np.unravel_index(int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff))), diff.shape)
        raise AssertionError(
            f'{name}: {int(bad.sum())} of {bad.size} elements ({100.0 * bad.mean():.3f}%) differ beyond '
            f'atol={atol} rtol={rtol}; max |diff| = {float(np.nanmax(diff)):.3e} at {tuple(int(i) for i in idx)} '
            f'(actual {a[idx]:.6g}, expected {e[idx]:.6g})'
        )


@pytest.fixture
def close_report():
    return assert_close_report


os.environ.setdefault('SG3VIZ_TESTING', '1')
