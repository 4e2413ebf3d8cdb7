"""engine.jobs: the render process's job mechanism (queue, progress, cancel, errors) driven step by step."""

from __future__ import annotations

import pytest

from engine import jobs


def _runner():
    sent = []
    return jobs.JobRunner(ctx=None, send=sent.append), sent


def _drain(runner, max_steps=1000):
    for _ in range(max_steps):
        if not runner.busy:
            return
        runner.step()
    raise AssertionError('job did not finish')


def test_job_runs_to_done_with_progress_and_result():
    runner, sent = _runner()
    assert runner.handle(('job_start', jobs.JobSpec(1, 'sleep', {'num': 5, 'step_sec': 0.0})))
    _drain(runner)
    states = [u.state for u in sent]
    assert states[0] == 'queued' and states[-1] == 'done' and 'running' in states
    assert sent[-1].result == {'num': 5} and sent[-1].done == 5 and sent[-1].total == 5
    running = [u for u in sent if u.state == 'running']
    assert running[0].done == 1 and running[-1].done == 5  # first and last steps are always reported


def test_jobs_queue_in_order_and_cancel():
    runner, sent = _runner()
    runner.handle(('job_start', jobs.JobSpec(1, 'sleep', {'num': 50, 'step_sec': 0.0})))
    runner.handle(('job_start', jobs.JobSpec(2, 'sleep', {'num': 2, 'step_sec': 0.0})))
    runner.handle(('job_start', jobs.JobSpec(3, 'sleep', {'num': 2, 'step_sec': 0.0})))
    runner.step()
    runner.step()
    assert runner.handle(('job_cancel', 1))
    runner.cancel(3)  # still queued
    runner.cancel(99)  # unknown: ignored
    _drain(runner)
    final = {u.job_id: u.state for u in sent if u.is_final}
    assert final == {1: 'cancelled', 2: 'done', 3: 'cancelled'}
    assert [u.job_id for u in sent if u.state == 'running'][0] == 1


def test_errors_are_reported_and_the_runner_goes_on():
    runner, sent = _runner()
    runner.handle(('job_start', jobs.JobSpec(1, 'sleep', {'num': 5, 'step_sec': 0.0, 'fail_at': 2})))
    runner.handle(('job_start', jobs.JobSpec(2, 'nope', {})))
    runner.handle(('job_start', jobs.JobSpec(3, 'sleep', {'bogus_param': 1})))
    runner.handle(('job_start', jobs.JobSpec(4, 'sleep', {'num': 1, 'step_sec': 0.0})))
    _drain(runner)
    final = {u.job_id: u for u in sent if u.is_final}
    assert final[1].state == 'error' and 'failing at step 2' in final[1].error and final[1].error_detail is None
    assert final[2].state == 'error' and 'kind must be one of' in final[2].error
    assert final[3].state == 'error' and 'bogus_param' in final[3].error and final[3].error_detail
    assert final[4].state == 'done'
    assert not runner.handle(('render', None))


def test_queue_is_bounded():
    runner, sent = _runner()
    for i in range(jobs.MAX_QUEUED_JOBS + 3):
        runner.handle(('job_start', jobs.JobSpec(i, 'sleep', {'num': 1})))
    errors = [u for u in sent if u.state == 'error']
    assert len(errors) == 3 and 'too many jobs' in errors[0].error
    runner.cancel_all()
    assert not runner.busy


def test_update_fraction():
    assert jobs.JobUpdate(1, 'x', 'running', 3, 4).fraction == pytest.approx(0.75)
    assert jobs.JobUpdate(1, 'x', 'running', 3, 0).fraction == 0.0


def test_progress_data_is_always_delivered():
    runner, sent = _runner()
    runner.handle(('job_start', jobs.JobSpec(1, 'sleep', {'num': 30, 'step_sec': 0.0, 'data_every': 10})))
    _drain(runner)
    with_data = [u.data for u in sent if u.data is not None]
    assert with_data == [{'step': 10}, {'step': 20}, {'step': 30}]
    assert 'project' in jobs.JOB_KINDS and callable(jobs.resolve_job('project'))
