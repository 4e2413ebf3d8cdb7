"""Owns rendering off the GUI thread: request numbering (stamps), starting the render worker (a spawned process or a
thread), its restart on crash (with a warm spare process), and dropping stale results.

What runs inside the worker is ``engine.render_worker``; results cross the process boundary through
``engine.shm_frames``. The worker runs an :class:`engine.renderer.Renderer`; networks load inside it through
``engine.net_cache``. The GUI
calls :meth:`AsyncRenderer.set_request` every frame and :meth:`AsyncRenderer.get_result` whenever it wants
the newest frame; neither blocks. Requests are stamped; an unchanged request (dataclass equality, the stamp
ignored) is not rendered again; the worker skips requests superseded while it was busy; results older than the
newest one already delivered are dropped.

Separate process (default): a *spawned* child (``multiprocessing`` spawn context) that imports only this module,
``engine.protocol``, ``engine.render_worker``, ``engine.shm_frames`` and -- inside the child -- ``engine.renderer``
(torch). The parent never imports torch, and the
child never re-runs the GUI's ``__main__`` (see :func:`_bare_main`). Requests and small results travel pickled
through pipes; the image and FFT arrays of a result travel through one ``multiprocessing.shared_memory`` block per
result that the child creates under a name the parent can predict (``<prefix>_<counter>``) and the parent unlinks
after copying the arrays out, so no segment outlives the renderer even when the child is killed. If the child
dies, the next call notices, starts a new one, re-sends the current request (a request in flight when the worker
died only once, so that a request that kills it does not loop), delivers one result whose error reads ``render
process died (exit code N); restarted``, and reports :attr:`AsyncRenderer.is_restarting` until the new worker's
first result.

Long computations (a spectrum averaged over seeds, an equivariance measurement, a projection, ...) run as *jobs*
in the same worker, between renders (``engine.jobs``: :meth:`AsyncRenderer.start_job`,
:meth:`AsyncRenderer.cancel_job`, :meth:`AsyncRenderer.job_updates`). Jobs unfinished when the worker dies or is
replaced end with an 'error' update.

In-process mode runs the same renderer in a daemon worker thread; :meth:`AsyncRenderer.set_separate_process`
switches between the two at run time.

Both workers run the same loop (:func:`_serve`): newest request, poll the network cache, render. While a network
loads (in a thread of the cache) the loop keeps reading requests, so a newer request for another network starts at
once instead of waiting for the older load, which finishes in the background and is cached. The render process lowers its priority (``os.nice(5)``) and uses one CPU
fewer than the machine has (unless ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` or ``num_threads`` say otherwise) so
that the GUI stays responsive on small machines.

Example::

    r = AsyncRenderer(device='auto')
    stamp = r.set_request(RenderRequest(pkl='network.pkl', w0_seeds=((1, 1.0),)))
    while (res := r.get_result()) is None or res.stamp < stamp:
        time.sleep(0.01)
    r.close()
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import queue
import sys
import threading
import types
import weakref

from engine.protocol import RenderRequest, RenderResult
from engine.render_worker import child_main as _child_main
from engine.render_worker import make_renderer as _make_renderer
from engine.render_worker import serve as _serve
from engine.shm_frames import DEFAULT_SHM_MIN_BYTES as _DEFAULT_SHM_MIN_BYTES
from engine.shm_frames import ShmNames as _ShmNames
from engine.shm_frames import unlink_leftovers as _unlink_leftovers
from engine.shm_frames import unpack as _unpack

logger = logging.getLogger(__name__)

_JOIN_TIMEOUT_SEC = 5.0


class AsyncRenderer:
    """Non-blocking front end of the renderer, for the GUI thread.

    Args:
        device: the renderer's device for requests whose ``device`` is 'auto' ('auto', 'cpu', 'cuda', 'cuda:N',
            'mps').
        separate_process: render in a spawned child process (True) or a worker thread of this process (False).
        shm_min_bytes: results whose image + FFT arrays total fewer bytes are pickled instead of going through
            shared memory (0: always shared memory).
        num_threads: torch threads of the render process; None: unchanged if ``OMP_NUM_THREADS`` or
            ``MKL_NUM_THREADS`` is set, else the number of usable CPUs minus one (at least 1). In-process mode
            leaves the thread count alone.
        renderer: ``'module:Class'`` of the renderer the worker builds as ``Class(device)`` (it needs
            ``try_render(request) -> RenderResult | None``); tests substitute a probe.
        spare_process: in separate-process mode, keep a second, idle render process warm once the first has
            answered (torch imported, the current network loaded on the CPU), so that the image is back within a
            render or two after the render process dies instead of after a cold start. Costs that process's memory.

    The worker (process or thread) starts on the first request. Not thread-safe: call it from one thread.

    Raises:
        ValueError: if ``num_threads`` is not None or a positive integer.
    """

    def __init__(
        self,
        device: str = 'auto',
        separate_process: bool = True,
        *,
        shm_min_bytes: int = _DEFAULT_SHM_MIN_BYTES,
        num_threads: int | None = None,
        renderer: str = 'engine.renderer:Renderer',
        spare_process: bool = True,
    ):
        if num_threads is not None and (
            isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
        ):
            raise ValueError(
                f'AsyncRenderer(): num_threads must be None or a positive integer, got {num_threads!r} '
                '(None picks the number of CPUs minus one)'
            )
        self._device = device
        self._separate = bool(separate_process)
        self._shm_min_bytes = int(shm_min_bytes)
        self._num_threads = num_threads
        self._renderer = str(renderer)
        self._devices: tuple[str, ...] = ()  # Newest available_devices a result reported (for crash notices).
        self._backend: _ProcessBackend | _ThreadBackend | None = None
        self._last_req: RenderRequest | None = None  # The newest request sent (stamped).
        self._next_stamp = 1
        self._received_stamp = 0  # Newest stamp the worker answered.
        self._delivered_stamp = 0  # Newest stamp get_result() returned.
        self._pending: RenderResult | None = None  # Newest result not delivered yet.
        self._notice: RenderResult | None = None  # A crash report, delivered once before anything else.
        self._crashed_stamp = -1  # Stamp of the request in flight at the last crash (re-sent once only).
        self._restarting = False  # A worker died; True until the new one answers.
        self._use_spare = bool(spare_process)
        self._spare: _ProcessBackend | None = None  # Warm stand-by render process (separate-process mode).
        self._spare_key: tuple | None = None  # (pkl, trust) the spare was asked to load.
        self._closed = False
        self._next_job_id = 1
        self._jobs: dict[int, str] = {}  # Jobs started and not finished: id -> kind.
        self._job_updates: list = []

    # ------------------------------------------------------------------------------------------------------------
    # Public API.

    def set_request(self, req: RenderRequest) -> int:
        """Asks for a render of ``req`` unless it equals the previous request (the stamp is ignored).

        This is the one place that numbers requests: the caller keeps the returned stamp to know which request a
        result answers (``RenderResult.stamp``).

        Args:
            req: the request. A nonzero ``stamp`` newer than :attr:`last_stamp` is kept (a caller that numbers its
                requests itself); otherwise the request gets ``last_stamp + 1``.

        Returns:
            The stamp of the request now current: the new one, or the previous one when ``req`` equals it.

        Raises:
            TypeError: if ``req`` is not a RenderRequest.
            RuntimeError: after :meth:`close`.
        """
        if not isinstance(req, RenderRequest):
            raise TypeError(f'set_request(): req must be a RenderRequest, got {type(req).__name__}')
        if self._closed:
            raise RuntimeError('set_request(): the AsyncRenderer is closed; make a new one')
        self._check_worker()
        if self._last_req is not None and req == self._last_req:
            return self._last_req.stamp
        stamp = int(req.stamp) if int(req.stamp) >= self._next_stamp else self._next_stamp
        stamped = dataclasses.replace(req, stamp=stamp)
        self._next_stamp = stamp + 1
        self._last_req = stamped
        self._submit(stamped)
        return stamp

    def get_result(self) -> RenderResult | None:
        """The newest result not delivered yet, or None (never blocks). Older results are dropped."""
        if self._closed:
            return None
        self._poll()
        self._check_worker()
        if self._notice is not None:
            res, self._notice = self._notice, None
        elif self._pending is not None:
            res, self._pending = self._pending, None
        else:
            return None
        self._delivered_stamp = max(self._delivered_stamp, res.stamp)
        return res

    @property
    def is_busy(self) -> bool:
        """True while the newest request has not been answered yet."""
        if self._closed or self._last_req is None:
            return False
        self._poll()
        self._check_worker()
        return self._received_stamp < self._last_req.stamp

    @property
    def is_restarting(self) -> bool:
        """True from noticing that the worker died until the new worker delivers its first result."""
        if self._closed:
            return False
        self._poll()
        self._check_worker()
        return self._restarting

    @property
    def last_stamp(self) -> int:
        """Stamp of the newest request sent to the worker (0 before the first), re-sends after a mode switch
        included: a result with this stamp answers the current request."""
        return self._last_req.stamp if self._last_req is not None else 0

    @property
    def separate_process(self) -> bool:
        """Whether rendering happens in a separate process."""
        return self._separate

    @property
    def pid(self) -> int | None:
        """Process id of the render process (None in in-process mode or before the first request)."""
        return self._backend.pid if isinstance(self._backend, _ProcessBackend) else None

    def set_separate_process(self, separate_process: bool) -> int | None:
        """Switches between a separate render process and an in-process worker thread.

        Returns:
            The stamp under which the current request is rendered again by the new worker (networks are loaded
            again there), or None when nothing was re-sent (no switch, no request yet, or closed).
        """
        separate_process = bool(separate_process)
        if separate_process == self._separate or self._closed:
            self._separate = separate_process
            return None
        self._stop_backend()
        self._separate = separate_process
        if self._last_req is None:
            return None
        self._last_req = dataclasses.replace(self._last_req, stamp=self._next_stamp)
        self._next_stamp += 1
        self._submit(self._last_req)
        return self._last_req.stamp

    # ---- jobs (engine.jobs): long computations in the render process ------------------------------------------
    def start_job(self, kind: str, params: dict | None = None, request: RenderRequest | None = None) -> int:
        """Starts a job in the worker (queued behind a running one); returns its id for :meth:`cancel_job` and
        the updates of :meth:`job_updates`.

        Args:
            kind: a key of ``engine.jobs.JOB_KINDS`` (unknown kinds end in an 'error' update).
            params: the job's keyword arguments (plain data).
            request: the RenderRequest the job works on (default: the newest request sent).

        Raises:
            TypeError: params is not a dict or request not a RenderRequest.
            RuntimeError: after :meth:`close`.
        """
        from engine.jobs import JobSpec

        if params is not None and not isinstance(params, dict):
            raise TypeError(f'start_job(): params must be a dict, got {type(params).__name__}')
        if request is not None and not isinstance(request, RenderRequest):
            raise TypeError(f'start_job(): request must be a RenderRequest, got {type(request).__name__}')
        if self._closed:
            raise RuntimeError('start_job(): the AsyncRenderer is closed; make a new one')
        self._check_worker()
        job_id = self._next_job_id
        self._next_job_id += 1
        spec = JobSpec(job_id, str(kind), dict(params or {}), request if request is not None else self._last_req)
        if self._backend is None:
            self._backend = self._new_backend()
        self._jobs[job_id] = str(kind)
        self._backend.send(('job_start', spec))
        return job_id

    def cancel_job(self, job_id: int) -> None:
        """Cancels a queued or running job (its last update reads 'cancelled'); unknown ids are ignored."""
        if not self._closed and self._backend is not None and job_id in self._jobs:
            self._backend.send(('job_cancel', int(job_id)))

    def job_updates(self) -> list:
        """``engine.jobs.JobUpdate``s received since the last call, oldest first (never blocks)."""
        if self._closed:
            return []
        self._poll()
        self._check_worker()
        out, self._job_updates = self._job_updates, []
        return out

    def close(self) -> None:
        """Stops the worker and frees its shared memory. Idempotent."""
        if not self._closed:
            self._stop_backend()
            self._closed = True

    def __enter__(self) -> AsyncRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------------------
    # Internals.

    def _new_backend(self) -> _ProcessBackend | _ThreadBackend:
        if self._separate:
            return _ProcessBackend(self._device, self._renderer, self._shm_min_bytes, self._num_threads)
        return _ThreadBackend(self._device, self._renderer)

    def _submit(self, req: RenderRequest) -> None:
        if self._backend is None:
            self._backend = self._new_backend()
        self._backend.submit(req)  # A dead worker is noticed by the next _check_worker().
        self._prepare_spare()

    def _poll(self) -> None:
        if self._backend is not None:
            for res in self._backend.poll():
                self._offer(res)
            self._take_job_updates(self._backend)
            self._prepare_spare()

    def _take_job_updates(self, backend) -> None:
        for u in backend.job_updates:
            if u.is_final:
                self._jobs.pop(u.job_id, None)
            self._job_updates.append(u)
        backend.job_updates = []

    def _fail_jobs(self, error: str) -> None:
        """Ends every unfinished job with an 'error' update (its worker is gone)."""
        from engine.jobs import JobUpdate

        for job_id, kind in sorted(self._jobs.items()):
            self._job_updates.append(JobUpdate(job_id, kind, 'error', error=error))
        self._jobs.clear()

    def _prepare_spare(self) -> None:
        """Keeps a warm spare render process (torch imported, the current network loaded on the CPU) once the active
        one has answered, so that a crash is recovered without a cold start."""
        if not (self._use_spare and self._separate and isinstance(self._backend, _ProcessBackend)):
            return
        if self._backend.num_answered == 0 or self._last_req is None:
            return  # Start-up: the spare would compete with the first render.
        if self._spare is not None and not self._spare.is_alive():
            self._spare.close()
            self._spare = None
        if self._spare is None:
            spare = self._new_backend()
            assert isinstance(spare, _ProcessBackend)
            self._spare, self._spare_key = spare, None
        key = (self._last_req.pkl, bool(self._last_req.trust))
        if key != self._spare_key:
            assert isinstance(self._spare, _ProcessBackend)
            self._spare.prepare(self._last_req)
            self._spare_key = key

    def _take_spare(self) -> _ProcessBackend | None:
        spare, self._spare = self._spare, None
        if spare is not None and not spare.is_alive():
            spare.close()
            return None
        return spare

    def _offer(self, res: RenderResult) -> None:
        """Keeps ``res`` if it is the newest so far; drops stale results."""
        self._restarting = False
        self._received_stamp = max(self._received_stamp, res.stamp)
        if res.available_devices:
            self._devices = tuple(res.available_devices)
        if res.stamp < self._delivered_stamp:
            return
        if self._pending is None or res.stamp >= self._pending.stamp:
            self._pending = res

    def _check_worker(self) -> None:
        """Notices a dead worker: restarts it, queues the crash notice, re-sends the in-flight request once."""
        backend = self._backend
        if backend is None or backend.is_alive():
            return
        for res in backend.poll():  # Results it finished before dying.
            self._offer(res)
        self._take_job_updates(backend)
        exitcode = backend.exitcode
        backend.close()
        self._backend = None
        what = 'render process' if isinstance(backend, _ProcessBackend) else 'render thread'
        logger.warning('%s died (exit code %s); restarting', what, exitcode)
        self._fail_jobs(f'{what} died (exit code {exitcode}); start the job again')
        was_in_flight = self._last_req is not None and self._received_stamp < self._last_req.stamp
        stamp = max(self._delivered_stamp, self._last_req.stamp if self._last_req is not None else 0)
        self._notice = RenderResult(
            stamp=stamp, error=f'{what} died (exit code {exitcode}); restarted', available_devices=self._devices
        )
        self._restarting = self._last_req is not None
        if self._last_req is None:
            if backend.num_answered > 0:
                self._submit_nothing()  # It was healthy: have the next one warm.
            return
        if was_in_flight and self._last_req.stamp == self._crashed_stamp:
            # The request that killed the worker was re-sent once and killed it again: do not loop.
            self._received_stamp = max(self._received_stamp, stamp)
            self._restarting = False
            return
        if was_in_flight:
            self._crashed_stamp = self._last_req.stamp
        # Re-send the current request (answered or not) so that the new worker loads the network and the image comes
        # back without waiting for the user to change something; the warm spare takes over when there is one.
        self._backend = self._take_spare() if isinstance(backend, _ProcessBackend) else None
        self._submit(self._last_req)

    def _submit_nothing(self) -> None:
        """Starts a fresh worker without a request (so the next one does not wait for the start-up)."""
        self._backend = self._new_backend()

    def _stop_backend(self) -> None:
        if self._backend is not None:
            self._fail_jobs('the renderer was switched or closed; start the job again')
        for b in (self._backend, self._spare):
            if b is not None:
                b.close()
        self._backend = self._spare = None
        self._pending = None
        self._received_stamp = self._last_req.stamp if self._last_req is not None else 0


# ----------------------------------------------------------------------------------------------------------------
# Workers.


class _ThreadBackend:
    """The renderer in a daemon worker thread of this process."""

    pid = None

    def __init__(self, device: str, renderer: str):
        self.num_answered = 0
        self.job_updates: list = []  # engine.jobs.JobUpdate, collected by poll()
        self._in: queue.Queue = queue.Queue()
        self._out: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(device, renderer), name='sg3viz-render', daemon=True)
        self._thread.start()

    def _run(self, device: str, renderer: str) -> None:
        _serve(_make_renderer(renderer, device), self._recv, self._send, send_job=self._send_job)

    def _recv(self, timeout: float | None) -> list:
        try:
            msgs = [self._in.get(timeout=timeout)]
        except queue.Empty:
            return []
        with contextlib.suppress(queue.Empty):
            while True:
                msgs.append(self._in.get_nowait())
        return msgs

    def _send(self, res: RenderResult) -> bool:
        self._out.put(res)
        return True

    def _send_job(self, update) -> bool:
        self._out.put(('job', update))
        return True

    def send(self, msg: tuple) -> None:
        """A job message ('job_start' / 'job_cancel')."""
        self._in.put(msg)

    def submit(self, req: RenderRequest) -> None:
        self._in.put(('render', req))

    def poll(self) -> list[RenderResult]:
        results = []
        with contextlib.suppress(queue.Empty):
            while True:
                item = self._out.get_nowait()
                if isinstance(item, tuple):  # ('job', JobUpdate)
                    self.job_updates.append(item[1])
                else:
                    results.append(item)
        self.num_answered += len(results)
        return results

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def exitcode(self) -> int | None:
        return None

    def close(self) -> None:
        self._in.put(('close',))
        self._thread.join(timeout=_JOIN_TIMEOUT_SEC)


class _ProcessBackend:
    """The renderer in a spawned child process; pipes for messages, shared memory for the arrays."""

    def __init__(self, device: str, renderer: str, shm_min_bytes: int, num_threads: int | None = None):
        ctx = multiprocessing.get_context('spawn')
        req_recv, self._req_send = ctx.Pipe(duplex=False)
        self._res_recv, res_send = ctx.Pipe(duplex=False)
        self._names = _ShmNames()
        self._proc = ctx.Process(
            target=_child_main,
            args=(req_recv, res_send, device, renderer, self._names.prefix, int(shm_min_bytes), num_threads),
            name='sg3viz-render',
            daemon=True,
        )
        with _bare_main():
            self._proc.start()
        req_recv.close()  # The child's ends: closing ours lets a dead child show up as EOF / broken pipe.
        res_send.close()
        self.num_answered = 0
        self.job_updates: list = []  # engine.jobs.JobUpdate, collected by poll()
        self._finalizer = weakref.finalize(self, _shutdown, self._proc, self._req_send, self._res_recv, self._names)

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def exitcode(self) -> int | None:
        return self._proc.exitcode

    def is_alive(self) -> bool:
        return self._proc.is_alive()

    def submit(self, req: RenderRequest) -> None:
        self.send(('render', req))

    def send(self, msg: tuple) -> None:
        with contextlib.suppress(OSError):  # BrokenPipeError: the child is dead; the caller notices.
            self._req_send.send(msg)

    def prepare(self, req: RenderRequest) -> None:
        """Asks the (idle, spare) worker to load ``req``'s network in the background without rendering."""
        with contextlib.suppress(OSError):
            self._req_send.send(('prepare', req))

    def poll(self) -> list[RenderResult]:
        results = []
        for msg in _drain(self._res_recv):
            if msg[0] == 'job':
                self.job_updates.append(msg[1])
            else:
                results.append(_unpack(msg, self._names))
        self.num_answered += len(results)
        return results

    def close(self) -> None:
        self._finalizer()


def _drain(conn) -> list:
    msgs = []
    try:
        while conn.poll():
            msgs.append(conn.recv())
    except (EOFError, OSError):  # The child died (maybe mid-message): what came before is kept.
        pass
    return msgs


def _shutdown(proc, req_send, res_recv, names: _ShmNames) -> None:
    """Stops a child process and frees everything it left (also called at interpreter exit via finalize)."""
    with contextlib.suppress(OSError):
        req_send.send(('close',))
    proc.join(timeout=_JOIN_TIMEOUT_SEC)
    if proc.is_alive():
        proc.terminate()
        proc.join(timeout=_JOIN_TIMEOUT_SEC)
    for msg in _drain(res_recv):
        if msg[0] == 'result':
            _unpack(msg, names)
    _unlink_leftovers(names)
    for conn in (req_send, res_recv):
        with contextlib.suppress(OSError):
            conn.close()


@contextlib.contextmanager
def _bare_main():
    """Hides the parent's ``__main__`` while a spawned child is being started.

    A spawn child normally re-imports the parent's main script (as ``__mp_main__``); for the visualizer that would
    import the GUI (imgui, glfw, OpenGL) into the render process. The child needs nothing from ``__main__`` (its
    target lives in this module), so it gets an empty one. ``Process.start()`` reads ``__main__`` synchronously.
    """
    main = sys.modules.get('__main__')
    sys.modules['__main__'] = types.ModuleType('__main__')
    try:
        yield
    finally:
        if main is not None:
            sys.modules['__main__'] = main


__all__ = ['AsyncRenderer']
