"""viz.job_client.JobClient: start / progress / cancel / outcome of one widget's render-process job (no window)."""

from __future__ import annotations

import types

import pytest

from engine.jobs import JobUpdate
from viz.job_client import JobClient, job_id_property


class _Viz:
    """The Visualizer's job API: ids from 1; ``can_run=False`` is a renderer without jobs (start_job -> None)."""

    def __init__(self, can_run: bool = True):
        self.can_run = can_run
        self.started: list = []
        self.cancelled: list = []

    def start_job(self, kind, params):
        if not self.can_run:
            return None
        self.started.append((kind, params))
        return len(self.started)

    def cancel_job(self, job_id):
        self.cancelled.append(job_id)


def _client(viz=None):
    owner = types.SimpleNamespace(viz=viz)
    return owner, JobClient(owner)


def test_fresh_client_reads_idle():
    _, job = _client()
    assert (job.job_id, job.kind, job.state, job.running, job.cancelling) == (None, '', '', False, False)
    assert (job.fraction, job.text, job.progress) == (0.0, '', (0, 0, ''))
    assert job.result is None and job.error is None and job.cancel_reason is None


def test_start_without_an_app_or_jobs_changes_nothing():
    owner, job = _client(None)
    assert not job.start('sleep', {}) and job.job_id is None and job.state == ''
    owner.viz = _Viz(can_run=False)  # the owner's app is read at each call
    assert not job.start('sleep', {}) and job.job_id is None and job.kind == ''
    assert not job.cancel() and owner.viz.cancelled == []


def test_progress_then_done():
    owner, job = _client(_Viz())
    assert job.start('average_spectrum', {'num': 4}, total=4)
    assert owner.viz.started == [('average_spectrum', {'num': 4})]
    assert (job.job_id, job.kind, job.running, job.progress) == (1, 'average_spectrum', True, (0, 4, 'queued'))
    assert not job.update(JobUpdate(99, 'average_spectrum', 'running', 3, 4, 'not ours'))  # someone else's job
    assert job.progress == (0, 4, 'queued')
    assert job.update(JobUpdate(1, 'average_spectrum', 'running', 1, 4, 'seed 1/4', data={'preview': 1}))
    assert job.progress == (1, 4, 'seed 1/4') and job.fraction == 0.25 and job.data == {'preview': 1}
    assert job.update(JobUpdate(1, 'average_spectrum', 'running', 2, 4))
    assert job.text == 'running' and job.data is None  # no message: the state; data belongs to one step
    assert job.update(JobUpdate(1, 'average_spectrum', 'done', 4, 4, result={'v': 1}, elapsed_sec=2.5))
    assert not job.running and job.job_id is None and job.state == 'done' and job.fraction == 1.0
    assert job.result == {'v': 1} and job.error is None and job.elapsed_sec == 2.5
    assert not job.update(JobUpdate(1, 'average_spectrum', 'running', 4, 4))  # late: the id is let go


def test_error_outcome_and_fraction_bounds():
    _, job = _client(_Viz())
    job.start('project', {})
    job.update(JobUpdate(1, 'project', 'running', 7, 0))
    assert job.fraction == 0.0  # total unknown
    job.update(JobUpdate(1, 'project', 'running', 9, 4))
    assert job.fraction == 1.0
    job.update(JobUpdate(1, 'project', 'error', error='not an image'))
    assert job.state == 'error' and job.error == 'not an image' and job.result is None and not job.running


def test_cancel_reason_survives_late_updates_and_resets_on_start():
    owner, job = _client(_Viz())
    job.start('project', {}, total=100)
    assert job.cancel('Cancelled: another network was loaded') and owner.viz.cancelled == [1]
    assert job.cancelling and job.running  # the render process has not answered yet
    job.update(JobUpdate(1, 'project', 'running', 5, 100, 'step 5'))  # sent before the cancel arrived
    assert job.cancelling and job.cancel_reason == 'Cancelled: another network was loaded'
    job.update(JobUpdate(1, 'project', 'cancelled', 5, 100))
    assert not job.cancelling and job.state == 'cancelled'
    assert job.cancel_reason == 'Cancelled: another network was loaded'  # still readable after the end
    assert not job.cancel()  # nothing runs
    job.start('project', {})
    assert job.cancel_reason is None and job.progress == (0, 0, 'queued') and job.job_id == 2
    job.cancel('')
    assert job.cancel_reason == 'Cancelled'


@pytest.mark.parametrize('value', [None, 5])
def test_job_id_property_reads_and_sets_the_client(value):
    class W:
        job_id = job_id_property()

        def __init__(self):
            self.viz = _Viz()
            self.job = JobClient(self)

    w = W()
    w.job_id = value
    assert w.job.job_id == value and w.job_id == value and w.job.running == (value is not None)
