"""The worker loop's exit: running jobs are closed (their cleanup runs) and the render process leaves with code 0."""

from __future__ import annotations

import time

from engine import jobs
from engine.async_renderer import AsyncRenderer
from engine.protocol import RenderRequest
from engine.render_worker import serve


def test_close_cancels_running_and_queued_jobs():
    sent: list = []
    inbox = [
        [('job_start', jobs.JobSpec(1, 'sleep', {'num': 1000, 'step_sec': 0.0})),
         ('job_start', jobs.JobSpec(2, 'sleep', {'num': 5, 'step_sec': 0.0}))],
        [],
        [],
        [('close',)],
    ]  # fmt: skip

    def recv(_timeout):
        return inbox.pop(0) if inbox else [('close',)]

    serve(renderer=None, recv=recv, send=lambda res: True, send_job=sent.append)
    final = {u.job_id: u.state for u in sent if u.is_final}
    assert final == {1: 'cancelled', 2: 'cancelled'}, [(u.job_id, u.state) for u in sent]
    assert any(u.job_id == 1 and u.state == 'running' for u in sent)  # it was running when the close came


def test_render_process_exits_cleanly_with_a_job_running():
    r = AsyncRenderer(
        device='cpu', separate_process=True, renderer='tests.viz.fake_renderer:FakeRenderer', spare_process=False
    )
    try:
        r.set_request(RenderRequest(device='cpu'))
        deadline = time.monotonic() + 120
        while r.get_result() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        job_id = r.start_job('sleep', {'num': 100_000, 'step_sec': 0.01})
        running = False
        while not running and time.monotonic() < deadline:
            running = any(u.job_id == job_id and u.state == 'running' for u in r.job_updates())
            time.sleep(0.02)
        assert running
        proc = r._backend._proc  # type: ignore[union-attr]
    finally:
        r.close()
    assert proc.exitcode == 0  # left by itself after 'close' (not terminated: that would be -15)
