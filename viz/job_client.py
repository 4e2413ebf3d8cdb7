"""One widget's render-process job: start, progress, cancel, outcome (torch-free; the GUI side of ``engine.jobs``).

API (for widgets that run long work in the render process)::

    self.job = JobClient(self)                    # owner: anything with a `.viz` (the Visualizer, or None in tests)

    # start (a click): False when there is no app or the renderer runs no jobs (say so to the user)
    if not self.job.start('project', params, total=num_steps):
        self.status = 'This renderer cannot run projections'
    self.job.running                              # a job id is held (queued or running, not yet final)
    self.job.cancel('Cancelled by the user')      # asks the render process; the reason is kept until the next start

    def on_job_update(self, u):                   # the Visualizer hands every JobUpdate to every widget
        if not self.job.update(u):                # not this widget's job: ignore it
            return
        self.job.fraction, self.job.text          # progress in [0, 1]; the job's message (or its state)
        self.job.data                             # the last progress step's `Progress.data` (e.g. a preview)
        self.job.cancelling                       # cancel() was called: late 'running' updates must not overwrite
                                                  # the reason shown to the user (they were sent before the cancel)
        if u.is_final:                            # the client has let go of the job id
            self.job.state                        # 'done' | 'cancelled' | 'error'
            self.job.result, self.job.error       # the result dict ('done'); the error text ('error')
            self.job.cancel_reason                # why it was cancelled from the GUI (None: not by us)

    if draw_progress(self.job, width, 'measure'): # in draw(): bar + Cancel while it runs
        self.job.cancel('Cancelled by the user')
    job_id = job_id_property()                    # optional: `widget.job_id` for scripts, tests and
                                                  # `Visualizer.jobs_running` (reads and sets the client's id)

A client holds one job at a time; :meth:`JobClient.start` does not cancel a running job (call :meth:`cancel`
first, or refuse while :attr:`JobClient.running`). Progress is ``done`` of ``total`` units (``total`` 0 =
unknown), as ``engine.jobs.JobUpdate`` reports it.
"""

from __future__ import annotations

from typing import Any

from imgui_bundle import imgui

FINAL_STATES = ('done', 'cancelled', 'error')  # engine.jobs.FINAL_STATES


class JobClient:
    """The state of one widget's render-process job (see the module docstring for the API).

    Args:
        owner: the widget (or anything with a ``viz`` attribute: the ``viz.visualizer.Visualizer`` with
            ``start_job(kind, params) -> int | None`` and ``cancel_job(job_id)``, or None in tests). It is read at
            each call, so a widget may get its app after construction.

    Attributes:
        job_id: the running job's id (None when none runs).
        kind: the kind of the last job started ('' before the first).
        state: '' before the first start, then the last reported state ('queued', 'running', 'done', 'cancelled',
            'error').
        done, total: progress in units (``total`` 0 = unknown).
        message: the last progress message.
        data: the last progress step's data (None when it had none).
        result: the finished job's result dict ('done' only).
        error: the failed job's user-facing error text ('error' only).
        elapsed_sec: seconds the job ran (from its last update).
        cancel_reason: the reason given to :meth:`cancel` for the current / last job (None: not cancelled by us).
    """

    def __init__(self, owner: Any = None) -> None:
        self._owner = owner
        self.job_id: int | None = None
        self.kind = ''
        self.cancel_reason: str | None = None
        self._reset_outcome(state='', total=0)

    def _reset_outcome(self, state: str, total: int) -> None:
        self.state = state
        self.done, self.total = 0, int(total)
        self.message = ''
        self.data: dict | None = None
        self.result: dict | None = None
        self.error: str | None = None
        self.elapsed_sec = 0.0

    @property
    def viz(self) -> Any:
        return getattr(self._owner, 'viz', None)

    # ---- actions ----------------------------------------------------------------------------------------------
    def start(self, kind: str, params: dict, *, total: int = 0) -> bool:
        """Starts a job of ``kind`` (``engine.jobs.JOB_KINDS``) with ``params`` on the app's current request.

        Args:
            kind: the job kind.
            params: the job function's keyword arguments (plain data).
            total: the expected number of units, shown until the first progress update (0 = unknown).

        Returns:
            True when it started; False without an app or when the renderer runs no jobs (nothing changes then).
        """
        viz = self.viz
        if viz is None:
            return False
        job_id = viz.start_job(kind, params)
        if job_id is None:
            return False
        self.job_id = int(job_id)
        self.kind = kind
        self.cancel_reason = None
        self._reset_outcome(state='queued', total=total)
        return True

    def cancel(self, reason: str = 'Cancelled') -> bool:
        """Asks the render process to cancel the running job (its final update then reads 'cancelled').

        Args:
            reason: why, for the user; kept in :attr:`cancel_reason` (late progress updates do not clear it).

        Returns:
            True when a job was running.
        """
        viz = self.viz
        if self.job_id is None or viz is None:
            return False
        viz.cancel_job(self.job_id)
        self.cancel_reason = reason or 'Cancelled'
        return True

    def update(self, u: Any) -> bool:
        """Takes one ``engine.jobs.JobUpdate``; returns False (and changes nothing) when it is not this client's job.

        Records progress, message and data; on the final update ('done' / 'cancelled' / 'error') records the
        result or error and lets go of the job id.
        """
        if self.job_id is None or u.job_id != self.job_id:
            return False
        self.state = str(u.state)
        self.done, self.total = int(u.done), int(u.total)
        self.message = str(u.message or '')
        self.data = getattr(u, 'data', None)
        self.elapsed_sec = float(getattr(u, 'elapsed_sec', 0.0) or 0.0)
        if self.state in FINAL_STATES:
            self.job_id = None
            self.result = u.result if self.state == 'done' else None
            self.error = u.error if self.state == 'error' else None
        return True

    # ---- read-outs ----------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a job was started and has not ended yet."""
        return self.job_id is not None

    @property
    def cancelling(self) -> bool:
        """Whether :meth:`cancel` was called for the running job and its final update has not come yet."""
        return self.job_id is not None and self.cancel_reason is not None

    @property
    def fraction(self) -> float:
        """Progress in [0, 1] (0 when the total is unknown)."""
        return min(max(self.done / self.total, 0.0), 1.0) if self.total > 0 else 0.0

    @property
    def text(self) -> str:
        """The job's last message, or its state when the message is empty ('queued', 'done', ...)."""
        return self.message or self.state

    @property
    def progress(self) -> tuple[int, int, str]:
        """(done, total, text), e.g. for a progress bar's overlay or ``dump_state``."""
        return self.done, self.total, self.text


def draw_progress(job: JobClient, width: float, cancel_id: str) -> bool:
    """While ``job`` runs: a progress bar ``width`` pixels wide with the job's text, and a Cancel button beside it
    (imgui id ``Cancel##<cancel_id>``). Returns True when Cancel was clicked (the caller cancels, with its reason)."""
    if not job.running:
        return False
    imgui.progress_bar(job.fraction, imgui.ImVec2(width, 0), job.text)
    imgui.same_line()
    return bool(imgui.button(f'Cancel##{cancel_id}'))


def job_id_property() -> property:
    """A widget property ``job_id`` that reads and sets ``self.job.job_id`` (the widget's :class:`JobClient`)."""

    def fget(self) -> int | None:
        return self.job.job_id

    def fset(self, value: int | None) -> None:
        self.job.job_id = value

    return property(fget, fset, doc="The running job's id (None when none runs); the JobClient's ``job_id``.")
