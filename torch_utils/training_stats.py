"""Statistics collected during training: `report()` anywhere, read them with a `Collector` once per tick.

Each reported value adds to running moments per statistic name: count, sum and sum of squares (float64). A
`Collector` turns the moments accumulated since its last `update()` into num/mean/std. With several processes,
`init_multiprocessing()` makes `Collector.update()` all-reduce the moments over `torch.distributed`; without it
everything stays local (no torch.distributed needed).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from dnnlib.util import EasyDict

_num_moments = 3  # [num_scalars, sum_of_scalars, sum_of_squares]
_reduce_dtype = torch.float32  # Data type used for all-reduce across processes.
_counter_dtype = torch.float64  # Data type of the accumulated moments.

# Process-wide accumulation state. `report()` is a global sink by design (it is called from deep inside the
# training code); `init_multiprocessing()` sets the rank and sync device once per process.
_rank: int = 0
_sync_device: torch.device | None = None
_sync_called: bool = False
_counters: dict[str, dict[torch.device, torch.Tensor]] = {}  # name -> device -> moments since last _sync()
_cumulative: dict[str, torch.Tensor] = {}  # name -> cumulative moments (CPU, float64)


def init_multiprocessing(rank: int, sync_device: torch.device | str | None) -> None:
    """Sets this process's rank and the device used to all-reduce statistics (None: no cross-process sync).

    Call once per process before the first `Collector.update()`; `sync_device` must be the process's CUDA device
    with the NCCL backend, or CPU with gloo.

    Raises:
        RuntimeError: If called after statistics were already synchronised.
        ValueError: On a negative rank.
    """
    global _rank, _sync_device
    if _sync_called:
        raise RuntimeError('init_multiprocessing(): must be called before the first Collector.update()')
    if rank < 0:
        raise ValueError(f'init_multiprocessing(): rank must be >= 0, got {rank}')
    _rank = int(rank)
    _sync_device = torch.device(sync_device) if sync_device is not None else None


@torch.no_grad()
def report(name: str, value: Any) -> Any:
    """Adds the elements of `value` to statistic `name`; returns `value` unchanged.

    Args:
        name: Statistic name, e.g. 'Loss/G/loss'.
        value: A scalar, sequence, ndarray or tensor (any shape, any device); every element counts once.
            Empty values are allowed (they add nothing but register the name).
    """
    if not isinstance(name, str):
        raise TypeError(f'report(): name must be a str, got {type(name).__name__}')
    if name not in _counters:
        _counters[name] = {}

    elems = torch.as_tensor(value)
    if elems.numel() == 0:
        return value
    elems = elems.detach().flatten().to(_reduce_dtype)
    moments = torch.stack([torch.ones_like(elems).sum(), elems.sum(), elems.square().sum()])
    assert moments.ndim == 1 and moments.shape[0] == _num_moments
    moments = moments.to(_counter_dtype)

    device = moments.device
    if device not in _counters[name]:
        _counters[name][device] = torch.zeros_like(moments)
    _counters[name][device].add_(moments)
    return value


def report0(name: str, value: Any) -> Any:
    """Like `report()` but only rank 0 contributes (other ranks register the name with nothing)."""
    report(name, value if _rank == 0 else [])
    return value


def _sync(names: list[str]) -> list[tuple[str, torch.Tensor]]:
    """Folds the pending counters of `names` into the cumulative moments (all-reduced across processes)."""
    global _sync_called
    if len(names) == 0:
        return []
    _sync_called = True

    # Collect pending deltas and reset the counters.
    deltas = []
    device = _sync_device if _sync_device is not None else torch.device('cpu')
    for name in names:
        delta = torch.zeros([_num_moments], dtype=_counter_dtype, device=device)
        for counter in _counters[name].values():
            delta.add_(counter.to(device))
            counter.zero_()
        deltas.append(delta)
    stacked = torch.stack(deltas)

    # All-reduce over processes.
    if _sync_device is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(stacked)

    stacked = stacked.cpu()
    for idx, name in enumerate(names):
        if name not in _cumulative:
            _cumulative[name] = torch.zeros([_num_moments], dtype=_counter_dtype)
        _cumulative[name].add_(stacked[idx])
    return [(name, _cumulative[name]) for name in names]


class Collector:
    """Reads the statistics reported since the previous `update()`.

    Args:
        regex: Only names that fully match this regular expression are collected.
        keep_previous: If a statistic got no new values since the previous update, keep its previous values
            instead of reporting it empty.

    Example::

        collector = Collector(regex='Loss/.*')
        ...  # training code calls training_stats.report('Loss/G/loss', loss)
        collector.update()
        print(collector.mean('Loss/G/loss'))
    """

    def __init__(self, regex: str = '.*', keep_previous: bool = True) -> None:
        self._regex = re.compile(regex)
        self._keep_previous = keep_previous
        self._cumulative: dict[str, torch.Tensor] = {}
        self._moments: dict[str, torch.Tensor] = {}
        self.update()
        self._moments.clear()

    def names(self) -> list[str]:
        """Names of all reported statistics that match the regex (sorted)."""
        return sorted(name for name in _counters if self._regex.fullmatch(name))

    def update(self) -> None:
        """Moves the values reported since the previous call into this collector (all-reduced across processes)."""
        if not self._keep_previous:
            self._moments.clear()
        for name, cumulative in _sync(self.names()):
            if name not in self._cumulative:
                self._cumulative[name] = torch.zeros([_num_moments], dtype=_counter_dtype)
            delta = cumulative - self._cumulative[name]
            self._cumulative[name].copy_(cumulative)
            if float(delta[0]) != 0:
                self._moments[name] = delta

    def num(self, name: str) -> int:
        """Number of scalars reported for `name` in the collected interval."""
        moments = self._moments.get(name)
        return 0 if moments is None else int(moments[0])

    def mean(self, name: str) -> float:
        """Mean of the scalars reported for `name` (NaN if none)."""
        moments = self._moments.get(name)
        if moments is None or float(moments[0]) == 0:
            return float('nan')
        return float(moments[1] / moments[0])

    def std(self, name: str) -> float:
        """Standard deviation of the scalars reported for `name` (NaN if none)."""
        moments = self._moments.get(name)
        if moments is None or float(moments[0]) == 0 or not np.isfinite(float(moments[1])):
            return float('nan')
        if int(moments[0]) == 1:
            return 0.0
        mean = float(moments[1] / moments[0])
        raw_var = float(moments[2] / moments[0])
        return float(np.sqrt(max(raw_var - np.square(mean), 0)))

    def as_dict(self) -> EasyDict:
        """`{name: EasyDict(num=, mean=, std=)}` of every collected statistic (JSON-serialisable)."""
        stats = EasyDict()
        for name in self.names():
            if name in self._moments:
                stats[name] = EasyDict(num=self.num(name), mean=self.mean(name), std=self.std(name))
        return stats

    def __getitem__(self, name: str) -> float:
        """`collector[name]` is `collector.mean(name)`."""
        return self.mean(name)
