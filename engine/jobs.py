"""Long computations in the render process: a small generic job mechanism (start, progress, cancel, result).

Some GUI features need minutes of work on the loaded network -- averaging a layer's spectrum over N seeds, a short
equivariance measurement, and later recording and projection. They must not freeze the window nor stop the live
view, and the user must be able to cancel them. A *job* does that work in the render process (or render thread),
interleaved with rendering.

How a job is written
    A job is a generator function registered in :data:`JOB_KINDS` under a kind name (as ``'module:function'``,
    imported lazily inside the worker, so this module stays free of torch and the GUI can import it)::

        def my_job(ctx, *, num: int, **params) -> Generator[Progress, None, dict]:
            for i in range(num):
                ...                                # one unit of work (a batch): keep it well under a second
                yield Progress(i + 1, num, 'working')
            return {'value': ...}                   # the result: plain data (numpy arrays, numbers, strings)

    ``ctx`` is the worker's :class:`JobContext` (the renderer): it prepares the job's ``RenderRequest`` (network,
    device, latent) exactly like a render. A job raising :class:`JobError` ends with that message shown to the user;
    any other exception ends it with the exception's type and text (and the traceback in ``error_detail``).

How it runs
    The worker loop (``engine.async_renderer._serve``) calls :meth:`JobRunner.step` whenever no render request is
    waiting and after every render: a waiting render goes first, so the view stays live, and a job advances one unit
    between renders (also while an animation sends a new request every frame). Jobs
    run one at a time in start order; a job started while another runs waits (state 'queued'). Cancelling closes
    the generator (``GeneratorExit`` at its current ``yield``, so its ``finally`` blocks run: a job that changes
    shared state such as ``G.synthesis.input.transform`` must restore it before every ``yield``).

Messages (plain picklable data; no pickle from untrusted peers ever reaches this module)
    GUI -> worker: ``('job_start', JobSpec)``, ``('job_cancel', job_id)``.
    worker -> GUI: ``('job', JobUpdate)`` -- 'queued', then 'running' with progress (at most every
    ``PROGRESS_INTERVAL_SEC`` plus the first and last step), then exactly one of 'done' (with ``result``),
    'cancelled' or 'error'.

The GUI side is ``AsyncRenderer.start_job(kind, params, request) -> job_id``, ``cancel_job(job_id)`` and
``job_updates() -> [JobUpdate, ...]``.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import logging
import time
import traceback
from collections.abc import Callable, Generator
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# kind -> 'module:function'. Add new long-running features here.
JOB_KINDS: dict[str, str] = {
    'average_spectrum': 'engine.lab:average_spectrum_job',
    'measure_equivariance': 'engine.lab:measure_equivariance_job',
    'view_spectrum': 'engine.lab:view_spectrum_job',
    'project': 'engine.projector:projection_job',
    'render_video': 'engine.recording:render_video_job',
    'preload_networks': 'engine.checkpoints:preload_job',
    'sleep': 'engine.jobs:sleep_job',  # For tests of the mechanism.
}

JOB_STATES = ('queued', 'running', 'done', 'cancelled', 'error')
FINAL_STATES = ('done', 'cancelled', 'error')
PROGRESS_INTERVAL_SEC = 0.1
MAX_QUEUED_JOBS = 16


class JobError(Exception):
    """A user-facing job failure: its message is shown as is (no traceback)."""


@dataclasses.dataclass(frozen=True)
class Progress:
    """Yielded by a job after each unit of work: ``done`` of ``total`` units (``total`` 0 = unknown), a message, and
    optional ``data`` for the GUI (plain data, e.g. a preview image; a progress with data is always delivered)."""

    done: int
    total: int
    message: str = ''
    data: dict | None = None


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """A job to start. ``request`` is the ``RenderRequest`` whose network/latent/layer the job works on (or None)."""

    job_id: int
    kind: str
    params: dict
    request: Any = None


@dataclasses.dataclass(frozen=True)
class JobUpdate:
    """What the worker reports about a job.

    Attributes:
        job_id: the id from ``start_job``.
        kind: the job kind.
        state: one of :data:`JOB_STATES`.
        done, total: progress in units (``total`` 0 = unknown).
        message: progress text.
        result: the job's result dict (state 'done' only).
        error: user-facing error text (state 'error' only).
        error_detail: traceback of an unexpected error.
        elapsed_sec: seconds since the job started running.
        data: the ``Progress.data`` of this step ('running' only; None when the step had none).
    """

    job_id: int
    kind: str
    state: str
    done: int = 0
    total: int = 0
    message: str = ''
    result: dict | None = None
    error: str | None = None
    error_detail: str | None = None
    elapsed_sec: float = 0.0
    data: dict | None = None

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def fraction(self) -> float:
        """Progress in [0, 1] (0 when the total is unknown)."""
        return min(max(self.done / self.total, 0.0), 1.0) if self.total > 0 else 0.0


class JobContext(Protocol):
    """What a job gets from the worker (implemented by ``engine.renderer.Renderer.job_context``)."""

    def prepare(self, request: Any) -> Any: ...


def resolve_job(kind: str) -> Callable[..., Generator[Progress, None, dict]]:
    """The job function registered for ``kind``.

    Raises:
        JobError: unknown kind (lists the known ones).
    """
    target = JOB_KINDS.get(kind)
    if target is None:
        raise JobError(f'start_job(): kind must be one of {sorted(JOB_KINDS)}, got {kind!r}')
    module, _, name = target.partition(':')
    return getattr(importlib.import_module(module), name)


class _Active:
    def __init__(self, spec: JobSpec, gen: Generator[Progress, None, dict]):
        self.spec = spec
        self.gen = gen
        self.t0 = time.monotonic()
        self.last_sent = 0.0
        self.progress = Progress(0, 0, '')


class JobRunner:
    """Runs jobs one step at a time for the worker loop (single-threaded: call it from the worker only).

    Args:
        ctx: the :class:`JobContext` passed to every job.
        send: delivers a :class:`JobUpdate` to the GUI.
    """

    def __init__(self, ctx: Any, send: Callable[[JobUpdate], Any]):
        self._ctx = ctx
        self._send = send
        self._queue: list[JobSpec] = []
        self._active: _Active | None = None

    @property
    def busy(self) -> bool:
        """True while a job runs or waits."""
        return self._active is not None or bool(self._queue)

    def handle(self, msg: tuple) -> bool:
        """Takes a 'job_start' / 'job_cancel' message; returns False for other messages."""
        if msg[0] == 'job_start':
            spec = msg[1]
            if len(self._queue) >= MAX_QUEUED_JOBS:
                self._send(JobUpdate(spec.job_id, spec.kind, 'error', error='too many jobs queued; cancel some first'))
            else:
                self._queue.append(spec)
                self._send(JobUpdate(spec.job_id, spec.kind, 'queued'))
            return True
        if msg[0] == 'job_cancel':
            self.cancel(int(msg[1]))
            return True
        return False

    def cancel(self, job_id: int) -> None:
        """Cancels a queued or running job (unknown or finished ids are ignored)."""
        for spec in [s for s in self._queue if s.job_id == job_id]:
            self._queue.remove(spec)
            self._send(JobUpdate(spec.job_id, spec.kind, 'cancelled'))
        active = self._active
        if active is not None and active.spec.job_id == job_id:
            self._active = None
            try:
                active.gen.close()
            except Exception as e:  # A job's cleanup failed: report it, the worker goes on.
                logger.warning('job %d (%s): cleanup on cancel failed: %s', job_id, active.spec.kind, e)
            self._send(self._update(active, 'cancelled'))

    def cancel_all(self) -> None:
        for job_id in [s.job_id for s in self._queue] + ([self._active.spec.job_id] if self._active else []):
            self.cancel(job_id)

    def step(self) -> None:
        """Advances the running job by one unit (starting the next queued one if none runs)."""
        if self._active is None:
            if not self._queue:
                return
            spec = self._queue.pop(0)
            try:
                gen = resolve_job(spec.kind)(self._ctx, request=spec.request, **spec.params)
            except Exception as e:
                self._send(self._failure(spec, e, time.monotonic()))
                return
            self._active = _Active(spec, gen)
        active = self._active
        try:
            progress = next(active.gen)
        except StopIteration as stop:
            self._active = None
            result = stop.value if isinstance(stop.value, dict) else {'value': stop.value}
            self._send(self._update(active, 'done', result=result))
            return
        except Exception as e:
            self._active = None
            self._send(self._failure(active.spec, e, active.t0))
            return
        active.progress = progress if isinstance(progress, Progress) else Progress(0, 0, str(progress))
        now = time.monotonic()
        first = active.last_sent == 0.0
        last = active.progress.total > 0 and active.progress.done >= active.progress.total
        has_data = active.progress.data is not None
        if first or last or has_data or now - active.last_sent >= PROGRESS_INTERVAL_SEC:
            active.last_sent = now
            self._send(self._update(active, 'running', data=active.progress.data))

    def _update(self, active: _Active, state: str, result: dict | None = None, data: dict | None = None) -> JobUpdate:
        p = active.progress
        return JobUpdate(
            active.spec.job_id, active.spec.kind, state, p.done, p.total, p.message, result=result,
            elapsed_sec=time.monotonic() - active.t0, data=data,
        )  # fmt: skip

    @staticmethod
    def _failure(spec: JobSpec, e: Exception, t0: float) -> JobUpdate:
        if isinstance(e, JobError):
            return JobUpdate(spec.job_id, spec.kind, 'error', error=str(e), elapsed_sec=time.monotonic() - t0)
        logger.exception('job %d (%s) failed', spec.job_id, spec.kind)
        return JobUpdate(
            spec.job_id, spec.kind, 'error', error=f'{spec.kind} failed: {type(e).__name__}: {e}',
            error_detail=traceback.format_exc(), elapsed_sec=time.monotonic() - t0,
        )  # fmt: skip


class JobIds:
    """Job ids for one GUI session: 1, 2, 3, ..."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def next(self) -> int:
        return next(self._counter)


def sleep_job(
    ctx: Any, *, request: Any = None, num: int = 10, step_sec: float = 0.01, fail_at: int = -1, data_every: int = 0
):
    """Test job: ``num`` steps of ``step_sec`` seconds; raises JobError at step ``fail_at``; every ``data_every``-th
    step (0 = never) carries data {'step': i}; returns {'num': num}."""
    for i in range(int(num)):
        if i == fail_at:
            raise JobError(f'sleep_job: failing at step {i} as asked')
        time.sleep(float(step_sec))
        data = {'step': i + 1} if data_every and (i + 1) % data_every == 0 else None
        yield Progress(i + 1, int(num), f'step {i + 1}', data=data)
    return {'num': int(num)}
