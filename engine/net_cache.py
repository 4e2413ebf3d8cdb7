"""Network loading for the renderer: load threads, the pickle cache, per-device copies, abandoned loads and
remembered failures. One owner for all of it; ``engine.renderer.Renderer`` only renders what this hands it.

A network is identified by ``(source, trust)`` (source as in ``engine.sources``; None = the bundled default) and,
once placed on a device, by ``(source, trust, device)``. :meth:`NetCache.lookup` never blocks: it answers
"ready" (a :class:`LoadedNet`), "failed" (a :class:`LoadFailure`) or "still loading" (both None) and starts a
daemon load thread when needed. :meth:`NetCache.get` is the blocking form for synchronous callers (CLIs, tests).

- Loads run in daemon threads that touch no cache state; the caller's thread adopts finished loads on its next
  ``lookup``/``get``. A newer request for another network does not wait: the older load keeps running in the
  background (at most ``max_loads_in_flight`` loads at once; a further one starts when one ends) and its network is
  cached when it finishes. Python cannot stop a thread, so this is how a load is cancelled: nobody waits for it.
- Caches: the last ``max_pkls`` generators on the CPU (as loaded) and the last ``max_nets`` per-device copies,
  both least-recently-used. ``on_evict(net_key)`` tells the renderer to drop what it derived from a copy.
- Failures of a local file are remembered while the file is unchanged (``engine.sources.file_state``), so asking
  again every frame does not reload a broken file; changing the file (or trusting it) retries. Failures of URLs and
  of the bundled default are reported once and retried on the next request.
- ``load_ms`` of a network is reported once, by the first lookup that returns it on its device (the renderer puts
  it into that result; later results say 0).

Not thread-safe: one thread (the render loop) calls it.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch

from engine import sources
from engine.protocol import NetInfo

logger = logging.getLogger(__name__)

__all__ = ['LoadFailure', 'LoadedNet', 'NetCache', 'NetLoadError', 'NetStatus', 'net_info']

_NUM_CACHED_PKLS = 3  # CPU copies of loaded networks (the pickle data can be large).
_NUM_CACHED_NETS = 3  # Per-device copies.
_MAX_LOADS_IN_FLIGHT = 3  # Abandoned loads still running + the current one.


@dataclasses.dataclass(frozen=True)
class LoadFailure:
    """Why a network did not load: a one-line ``message`` for users, the globals a safe-mode load ``refused``
    (the GUI offers "trust this file?"), and a traceback in ``detail`` for unexpected errors."""

    source: str | None
    trust: bool
    message: str
    refused_names: tuple[str, ...] = ()
    detail: str | None = None


class NetLoadError(Exception):
    """Raised by :meth:`NetCache.get` when the network did not load; ``failure`` says why."""

    def __init__(self, failure: LoadFailure):
        super().__init__(failure.message)
        self.failure = failure


@dataclasses.dataclass
class LoadedNet:
    """A generator ready to render on one device.

    Attributes:
        key: (source, trust, device name).
        G: the generator (eval mode, no gradients) on that device; do not modify it.
        info: the facts widgets need (:class:`engine.protocol.NetInfo`).
    """

    key: tuple
    G: Any
    info: NetInfo


@dataclasses.dataclass(frozen=True)
class NetStatus:
    """Answer of :meth:`NetCache.lookup`: ``net`` when ready, ``failure`` when the load failed, neither while it
    loads. ``load_ms`` is the load's duration (milliseconds) the first time the network is returned, else 0."""

    net: LoadedNet | None = None
    failure: LoadFailure | None = None
    load_ms: float = 0.0

    @property
    def is_loading(self) -> bool:
        return self.net is None and self.failure is None


@dataclasses.dataclass
class _CpuNet:
    G: Any
    resolved: str
    load_ms: float


class _LoadThread:
    """One load in a daemon thread; ``outcome`` is a _CpuNet or a LoadFailure once ``done``."""

    def __init__(self, loader: Callable, source: str | None, trust: bool):
        self.source, self.trust = source, trust
        self.file_state = sources.file_state(source)  # Before loading: a change during the load retries.
        self.outcome: _CpuNet | LoadFailure | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(loader,), name='sg3viz-load', daemon=True)
        self._thread.start()

    def _run(self, loader: Callable) -> None:
        t0 = time.perf_counter()
        try:
            with torch.random.fork_rng(devices=[]):  # Constructing modules draws random numbers: keep the user's.
                G, resolved = loader(self.source, self.trust)
            self.outcome = _CpuNet(G, str(resolved), (time.perf_counter() - t0) * 1e3)
        except BaseException as e:  # Includes sys.exit() in a trusted pickle's code; never kill the render loop.
            self.outcome = _failure(self.source, self.trust, e)
            if isinstance(e, KeyboardInterrupt):
                raise
        finally:
            self.done.set()


def _load_generator(source: str | None, trust: bool) -> tuple[Any, str]:
    from engine import loading

    G, path = loading.load_generator_and_path(source, trust=trust)
    return G, str(path)


def _failure(source: str | None, trust: bool, e: BaseException) -> LoadFailure:
    """A load exception -> LoadFailure with a one-line message (a traceback only for unexpected errors)."""
    from engine import loading

    if isinstance(e, loading.UnsafePickleError):
        return LoadFailure(source, trust, str(e), refused_names=tuple(str(n) for n in e.names))
    if isinstance(e, loading.LoadError):
        return LoadFailure(source, trust, str(e))
    where = sources.display_name(source)
    return LoadFailure(
        source, trust, f'Could not load {where}: {type(e).__name__}: {e}'.strip(), detail=traceback.format_exc()
    )


def net_info(G: Any, source: str | None, resolved: str) -> NetInfo:
    """The :class:`engine.protocol.NetInfo` of a generator (SG3 = has an input transform)."""
    inp = getattr(G.synthesis, 'input', None)
    has_transform = isinstance(getattr(inp, 'transform', None), torch.Tensor)
    has_noise = any(name.endswith('noise_const') for name, _ in G.synthesis.named_buffers())
    if not has_transform:
        config = 'stylegan2'
    else:  # Alias-Free GAN, Sec. 3.2 / Appendix: the R config uses 1x1 convolutions in every layer but ToRGB.
        kernels = {
            int(getattr(m, 'conv_kernel', 3))
            for m in G.synthesis.children()
            if hasattr(m, 'conv_kernel') and not getattr(m, 'is_torgb', False)
        }
        config = 'stylegan3-r' if kernels == {1} else 'stylegan3-t'
    return NetInfo(
        pkl='' if source is None else str(source),
        resolved_path=resolved,
        arch='stylegan3' if has_transform else 'stylegan2',
        img_resolution=int(G.img_resolution),
        img_channels=int(G.img_channels),
        z_dim=int(G.z_dim),
        c_dim=int(G.c_dim),
        w_dim=int(G.w_dim),
        num_ws=int(G.num_ws),
        has_noise=has_noise,
        has_input_transform=has_transform,
        config=config,
    )


class NetCache:
    """Owns network loading (see the module docstring).

    Args:
        max_pkls: generators kept on the CPU as loaded (>= 1).
        max_nets: per-device copies kept (>= 1).
        max_loads_in_flight: loads running at once, abandoned ones included (>= 1).
        on_evict: called with the (source, trust, device) key of a per-device copy when it is dropped.
        loader: ``loader(source, trust) -> (G on the CPU, resolved path)``; default
            ``engine.loading.load_generator_and_path`` (tests pass slow or failing loaders).

    Raises:
        ValueError: a limit below 1.
    """

    def __init__(
        self,
        *,
        max_pkls: int = _NUM_CACHED_PKLS,
        max_nets: int = _NUM_CACHED_NETS,
        max_loads_in_flight: int = _MAX_LOADS_IN_FLIGHT,
        on_evict: Callable[[tuple], None] | None = None,
        loader: Callable[[str | None, bool], tuple[Any, str]] | None = None,
    ):
        for name, v in (('max_pkls', max_pkls), ('max_nets', max_nets), ('max_loads_in_flight', max_loads_in_flight)):
            if int(v) < 1:
                raise ValueError(f'NetCache(): {name} must be >= 1, got {v}')
        self._max_pkls, self._max_nets, self._max_loads = int(max_pkls), int(max_nets), int(max_loads_in_flight)
        self._on_evict = on_evict
        self._loader = loader or _load_generator
        self._pkls: collections.OrderedDict[tuple, _CpuNet] = collections.OrderedDict()
        self._nets: collections.OrderedDict[tuple, LoadedNet] = collections.OrderedDict()
        self._loads: dict[tuple, _LoadThread] = {}
        self._failures: dict[tuple, tuple[tuple | None, LoadFailure]] = {}
        self._unreported_ms: dict[tuple, float] = {}  # per-device key -> load time not reported yet

    # ------------------------------------------------------------------------------------------------------------

    def lookup(self, source: str | None, trust: bool, device: torch.device | str) -> NetStatus:
        """Non-blocking: the network on ``device``, its load failure, or "loading" (a load thread is started).

        Args:
            source: network source (``engine.sources``), None = the bundled default.
            trust: load with ``trust=True`` (executes the pickle's code).
            device: where the copy lives ('cpu', 'cuda:0', ... or a torch.device).
        """
        self._adopt_finished()
        key, dev = (source, bool(trust)), str(device)
        net_key = (*key, dev)
        net = self._nets.get(net_key)
        if net is not None:
            self._nets.move_to_end(net_key)
            return NetStatus(net=net, load_ms=self._unreported_ms.pop(net_key, 0.0))
        cpu = self._pkls.get(key)
        if cpu is not None:
            self._pkls.move_to_end(key)
            return NetStatus(net=self._place(key, cpu, dev), load_ms=self._unreported_ms.pop(net_key, 0.0))
        failure = self._remembered_failure(key)
        if failure is not None:
            return NetStatus(failure=failure)
        if key not in self._loads and len(self._loads) < self._max_loads:
            self._loads[key] = _LoadThread(self._loader, source, bool(trust))
        return NetStatus()

    def get(self, source: str | None, trust: bool, device: torch.device | str) -> tuple[LoadedNet, float]:
        """Blocking form of :meth:`lookup`: waits for the load.

        Returns:
            (the network on ``device``, load time in ms the first time it is returned, else 0).

        Raises:
            NetLoadError: the load failed (``.failure`` says why).
        """
        while True:
            status = self.lookup(source, trust, device)
            if status.net is not None:
                return status.net, status.load_ms
            if status.failure is not None:
                raise NetLoadError(status.failure)
            load = self._loads.get((source, bool(trust)))
            if load is not None:
                load.done.wait()
            else:  # Too many loads in flight: wait for any of them.
                next(iter(self._loads.values())).done.wait()

    def prefetch(self, source: str | None, trust: bool) -> None:
        """Starts loading (source, trust) onto the CPU in the background unless it is cached, failed or loading."""
        self._adopt_finished()
        key = (source, bool(trust))
        if key in self._pkls or key in self._loads or self._remembered_failure(key) is not None:
            return
        if len(self._loads) < self._max_loads:
            self._loads[key] = _LoadThread(self._loader, source, bool(trust))

    @property
    def max_pkls(self) -> int:
        """How many loaded generators the CPU cache keeps (a preload beyond this would evict what it loaded)."""
        return self._max_pkls

    def state(self, source: str | None, trust: bool) -> str:
        """Where (source, trust) stands, without starting anything: 'ready' (loaded, on the CPU cache or a device),
        'loading', 'failed' (a remembered failure; :meth:`peek_failure` says why) or 'absent'."""
        self._adopt_finished()
        key = (source, bool(trust))
        if key in self._pkls or any(k[:2] == key for k in self._nets):
            return 'ready'
        if key in self._loads:
            return 'loading'
        if key in self._failures:
            return 'failed'
        return 'absent'

    def peek_failure(self, source: str | None, trust: bool) -> LoadFailure | None:
        """The remembered failure of (source, trust), if any (unlike :meth:`lookup`, does not consume it)."""
        entry = self._failures.get((source, bool(trust)))
        return entry[1] if entry is not None else None

    def is_loading(self, source: str | None, trust: bool) -> bool:
        """Whether a load thread for (source, trust) is running (an abandoned one included)."""
        load = self._loads.get((source, bool(trust)))
        return load is not None and not load.done.is_set()

    # ------------------------------------------------------------------------------------------------------------

    def _adopt_finished(self) -> None:
        for key in [k for k, load in self._loads.items() if load.done.is_set()]:
            load = self._loads.pop(key)
            outcome = load.outcome
            if isinstance(outcome, _CpuNet):
                self._failures.pop(key, None)
                self._pkls[key] = outcome
                self._pkls.move_to_end(key)
                while len(self._pkls) > self._max_pkls:
                    self._pkls.popitem(last=False)
            else:
                assert isinstance(outcome, LoadFailure), 'a load thread ended without an outcome'
                self._failures[key] = (load.file_state, outcome)

    def _remembered_failure(self, key: tuple) -> LoadFailure | None:
        entry = self._failures.get(key)
        if entry is None:
            return None
        state, failure = entry
        if state is None:  # URL / bundled default: reported once, retried on the next request.
            del self._failures[key]
            return failure
        if state != sources.file_state(key[0]):  # The file changed: try again.
            del self._failures[key]
            return None
        return failure

    def _place(self, key: tuple, cpu: _CpuNet, dev: str) -> LoadedNet:
        """The per-device copy of a CPU generator (made now, cached)."""
        net_key = (*key, dev)
        device = torch.device(dev)
        G = cpu.G if device.type == 'cpu' else copy.deepcopy(cpu.G).to(device)
        G.eval().requires_grad_(False)
        net = LoadedNet(key=net_key, G=G, info=net_info(G, key[0], cpu.resolved))
        self._nets[net_key] = net
        if cpu.load_ms > 0:
            self._unreported_ms[net_key] = cpu.load_ms
            cpu.load_ms = 0.0  # Reported with the first device it lands on.
        while len(self._nets) > self._max_nets:
            old_key, _ = self._nets.popitem(last=False)
            self._unreported_ms.pop(old_key, None)
            if self._on_evict is not None:
                self._on_evict(old_key)
        return net
