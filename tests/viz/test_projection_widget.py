"""Projection widget logic without GL: cancel reasons survive late progress updates, hostile field values clamp."""

from __future__ import annotations

from engine.jobs import JobUpdate
from viz.projection_widget import ProjectionWidget, is_image_path


class _Viz:
    def __init__(self):
        self.cancelled = []

    def cancel_job(self, job_id):
        self.cancelled.append(job_id)


def test_cancel_reason_survives_a_late_running_update():
    w = ProjectionWidget(None)
    w.viz = _Viz()
    w.job_id = 7
    w.cancel('Cancelled: another network was loaded')
    assert w.viz.cancelled == [7]
    w.on_job_update(JobUpdate(7, 'project', 'running', 1, 100, 'step 1/100, loss 0.5'))  # sent before the cancel
    assert w.status == 'Cancelled: another network was loaded'
    w.on_job_update(JobUpdate(7, 'project', 'cancelled', 1, 100))
    assert w.status == 'Cancelled: another network was loaded' and w.job_id is None
    w.on_job_update(JobUpdate(8, 'project', 'running', 2, 100, 'other job'))  # not ours
    assert w.status == 'Cancelled: another network was loaded'


def test_error_and_done_updates():
    w = ProjectionWidget(None)
    w.job_id = 3
    w.on_job_update(JobUpdate(3, 'project', 'error', error='projection: not an image'))
    assert w.status == 'projection: not an image' and w.job_id is None


def test_hostile_values_clamp():
    w = ProjectionWidget(None)
    w.set_state({'num_steps': -5, 'seed': 2**40, 'space': 'z', 'loss': 'lpips', 'preview_every': 10**9,
                 'target_path': 3, 'vgg16_path': None})  # fmt: skip
    assert (w.num_steps, w.seed, w.space, w.loss, w.preview_every) == (1, 2**32 - 1, 'w', 'auto', 1000)
    assert w.target_path == '' and w.vgg16_path == ''
    w.set_state({'num_steps': 'nan'})
    assert w.num_steps == 300
    assert w.start() is False and 'Give an image path' in w.status


def test_image_paths():
    assert is_image_path('a/b/photo.JPG') and is_image_path('x.webp')
    assert not is_image_path('net.pkl') and not is_image_path('latent.npz')
