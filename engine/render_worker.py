"""The render worker: the loop shared by the render process and the render thread ("newest request, poll the network
cache, render"), the render process's entry point, and its tuning (lower priority, one CPU left to the GUI).

``engine.async_renderer`` starts workers and talks to them; this module is what runs inside them. It imports no
torch itself (the renderer class it is given does, inside the worker).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

from engine.protocol import RenderRequest, RenderResult
from engine.shm_frames import pack as _pack

logger = logging.getLogger(__name__)

__all__ = ['child_main', 'make_renderer', 'serve']

_LOAD_POLL_SEC = 0.02  # How often the worker looks for newer requests (and finished loads) while a network loads.
_CHILD_NICE = 5  # Priority decrement of the render process.
_THREAD_ENV_VARS = ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')  # The user chose torch's thread count.


def _render_safely(renderer, req: RenderRequest) -> RenderResult | None:
    try:
        return renderer.try_render(req)
    except BaseException as e:  # try_render() should not raise; never let one request kill the worker.
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        return RenderResult(
            stamp=req.stamp,
            error=f'Rendering failed: {type(e).__name__}: {e}',
            error_detail=traceback.format_exc(),
            source=req.pkl,
        )


def serve(
    renderer,
    recv: Callable[[float | None], list],
    send: Callable[[RenderResult], bool],
    send_job: Callable[[Any], Any] | None = None,
) -> None:
    """The worker loop shared by the render process and the render thread: newest request, poll the cache, render.

    ``renderer.try_render`` returns None while the request's network loads (in a thread of its
    ``engine.net_cache.NetCache``); the loop then keeps reading requests every ``_LOAD_POLL_SEC``, so a newer request
    for another network is served at once while the older load finishes in the background.

    Args:
        renderer: an ``engine.renderer.Renderer`` (anything with ``try_render(request) -> RenderResult | None``).
        recv: ``recv(timeout_sec or None) -> [message, ...]``, [] on timeout; raises EOFError / OSError when the
            parent is gone. Messages: ('render', RenderRequest), ('prepare', RenderRequest) (a spare worker: load
            its network in the background, render nothing) and ('close',).
        send: delivers a result; returns False when the parent is gone.
        send_job: delivers an ``engine.jobs.JobUpdate`` (None: job messages are ignored). Jobs
            (``('job_start', JobSpec)``, ``('job_cancel', id)``) advance one step whenever no render is waiting and
            one step after every render, so a waiting render goes first but a job never starves while the view
            animates; the renderer is the jobs' context (``engine.jobs.JobContext``).
    """
    from engine.jobs import JobRunner

    jobs = JobRunner(renderer, send_job) if send_job is not None else None
    try:
        _serve_loop(renderer, recv, send, jobs)
    finally:
        if jobs is not None:
            jobs.cancel_all()  # Closes the jobs' generators now: their cleanup (temporary files) runs before exit.


def _serve_loop(renderer, recv: Callable[[float | None], list], send: Callable[[RenderResult], bool], jobs) -> None:
    """The loop of :func:`serve` (returns on 'close' or when the parent is gone)."""
    pending: RenderRequest | None = None
    while True:
        try:
            if pending is not None:
                timeout: float | None = _LOAD_POLL_SEC
            else:
                timeout = 0.0 if jobs is not None and jobs.busy else None
            msgs = recv(timeout)
        except (EOFError, OSError):
            return  # The parent is gone.
        for msg in msgs:
            if msg[0] == 'close':
                return
            if msg[0] == 'render':
                pending = msg[1]
            elif msg[0] == 'prepare' and hasattr(renderer, 'prefetch'):
                renderer.prefetch(msg[1])
            elif jobs is not None:
                jobs.handle(msg)
        if pending is None:
            if jobs is not None:
                jobs.step()  # One unit of the running job between renders.
            continue
        res = _render_safely(renderer, pending)
        if res is not None:
            pending = None
            if not send(res):
                return
            if jobs is not None and jobs.busy:
                # One job unit after every render, so a job advances even while an animation keeps the GUI sending
                # a new request each frame (the live view then updates at about half its rate).
                jobs.step()


def make_renderer(spec: str, device: str):
    """Imports ``'module:Class'`` and returns ``Class(device)``."""
    module, _, name = spec.partition(':')
    return getattr(importlib.import_module(module), name)(device)


def child_main(
    req_conn,
    res_conn,
    device: str,
    renderer: str,
    shm_prefix: str,
    shm_min_bytes: int,
    num_threads: int | None = None,
) -> None:
    """Entry point of the render process: render the newest request, send the result, repeat (see :func:`_serve`)."""
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the GUI's terminal: the parent closes us.
    made = make_renderer(renderer, device)  # Imports torch (the real renderer) before the thread count is set.
    _tune_render_process(num_threads)
    counter = 0

    def recv(timeout: float | None) -> list:
        if timeout is not None and not req_conn.poll(timeout):
            return []
        msgs = [req_conn.recv()]
        while req_conn.poll():
            msgs.append(req_conn.recv())
        return msgs

    def send(res: RenderResult) -> bool:
        nonlocal counter
        msg, counter = _pack(res, shm_prefix, counter, shm_min_bytes)
        try:
            res_conn.send(msg)
        except (EOFError, OSError):
            return False
        return True

    def send_job(update) -> bool:
        try:
            res_conn.send(('job', update))
        except (EOFError, OSError):
            return False
        return True

    serve(made, recv, send, send_job=send_job)
    # Leave without interpreter finalisation: with torch's and the network cache's threads still alive it can abort
    # ("terminate called without an active exception") after everything is done. The jobs are closed (serve), the
    # parent unlinks the shared-memory blocks, and nothing else of ours needs an exit hook.
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS tells, else all of them)."""
    if hasattr(os, 'sched_getaffinity'):
        with contextlib.suppress(OSError):
            return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _tune_render_process(num_threads: int | None) -> None:
    """Keeps the GUI responsive on small machines: lowers the render process's priority by ``_CHILD_NICE`` (where
    the OS has ``os.nice``) and leaves one CPU to the GUI: torch uses ``num_threads``, or if None and neither
    ``OMP_NUM_THREADS`` nor ``MKL_NUM_THREADS`` is set, the number of usable CPUs minus one (at least 1). A
    renderer that never imported torch (a test stand-in) is left without it."""
    if hasattr(os, 'nice'):
        try:
            os.nice(_CHILD_NICE)
        except OSError as e:
            logger.debug('os.nice(%d) failed: %s', _CHILD_NICE, e)
    if num_threads is None:
        if any(os.environ.get(name) for name in _THREAD_ENV_VARS):
            return  # The user's choice.
        num_threads = max(1, _usable_cpus() - 1)
    if 'torch' not in sys.modules:
        return
    import torch

    torch.set_num_threads(int(num_threads))
