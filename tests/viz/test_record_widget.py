"""Record widget logic without GL: sampling at video frame times (interpolated between GUI frames), limits,
hostile field values, output naming, the render_states API and job updates."""

from __future__ import annotations

import types

import pytest

from engine.jobs import JobUpdate
from engine.protocol import RenderRequest
from engine.states import interpolate_states
from viz import record_widget
from viz.record_widget import Recorder, RecordWidget


class _Viz:
    def __init__(self, capture_dir):
        self.started: list[tuple[str, dict]] = []
        self.cancelled: list[int] = []
        self.notes: list[str] = []
        self.capture = types.SimpleNamespace(capture_dir=str(capture_dir))
        self.window = None
        self.view = types.SimpleNamespace(net=None)

    def start_job(self, kind, params):
        self.started.append((kind, params))
        return len(self.started)

    def cancel_job(self, job_id):
        self.cancelled.append(job_id)

    def notify(self, text):
        self.notes.append(text)

    def get_session(self):
        return {'widgets': {'latent': {'x': 1.0, 'anim': True}}}


def _req(psi: float, layer: str | None = None) -> RenderRequest:
    return RenderRequest(trunc_psi=psi, layer_name=layer)


def test_recorder_samples_video_frame_times_with_interpolation():
    rec = Recorder(fps=10)
    assert rec.sample(_req(0.0), 0.0) == 1  # frame 0 at t = 0
    # A slow GUI: the next frame comes 0.25 s later with psi 1.0: video frames at 0.1 and 0.2 lie in between.
    assert rec.sample(_req(1.0), 0.25) == 2
    assert [s.trunc_psi for s in rec.states] == pytest.approx([0.0, 0.4, 0.8])
    # A fast GUI (0.04 s frames): a frame is taken only when a frame time is passed.
    assert rec.sample(_req(1.0), 0.04) == 0  # t = 0.29
    assert rec.sample(_req(0.5), 0.04) == 1  # t = 0.33: frame 0.3 is 1/4 of the way from 1.0 to 0.5
    assert rec.states[-1].trunc_psi == pytest.approx(1.0 - 0.25 * 0.5)
    # A discrete setting (the layer) switches at the GUI frame where it changed, never in between.
    rec.sample(_req(0.5, 'L2'), 0.17)  # t = 0.5: frames 0.4 (old layer) and 0.5 (the new one)
    assert [s.layer_name for s in rec.states[-2:]] == [None, 'L2']
    assert rec.states[-2] == interpolate_states(_req(0.5), _req(0.5, 'L2'), (0.4 - 0.33) / 0.17)
    assert len(rec.states) == 6 and rec.time_sec == pytest.approx(0.5)
    # Unchanged states share one object (no memory per frame for a still view).
    rec.sample(_req(0.5, 'L2'), 0.3)
    assert rec.states[-1] is rec.states[-2] is rec.states[-3]


def test_recorder_limits(monkeypatch):
    monkeypatch.setattr(record_widget, 'MAX_RECORD_FRAMES', 5)
    rec = Recorder(fps=10)
    rec.sample(_req(0.0), 0)
    rec.sample(_req(0.0), 10.0)
    assert len(rec.states) == 5 and rec.full and '5 frames' in rec.limit_note
    monkeypatch.setattr(record_widget, 'MAX_RECORD_FRAMES', 18_000)
    rec2 = Recorder(fps=30)
    ws = tuple(tuple(float(i) for i in range(512)) for _ in range(16))
    rec2.sample(RenderRequest(ws=ws), 0)
    for _ in range(400):
        rec2.sample(RenderRequest(ws=ws, trunc_psi=0.5), 1 / 30)  # a changing state with an explicit latent
        rec2.sample(RenderRequest(ws=ws), 1 / 30)
        if rec2.full:
            break
    assert rec2.full and 'MiB' in rec2.limit_note and len(rec2.states) < 400


def test_start_stop_renders_the_recording_as_a_job(tmp_path):
    w = RecordWidget(None)
    w.viz = _Viz(tmp_path)
    (tmp_path / '00003-image.png').write_bytes(b'')
    assert w.start() and w.recording
    for i in range(4):
        w.update_request({}, 1 / 30)
        w.sample(_req(0.25 * i))
    job = w.stop()
    assert job == 1 and not w.recording
    kind, params = w.viz.started[0]
    assert kind == 'render_video' and params['fps'] == 30 and params['view'] == 'image'
    assert [s.trunc_psi for s in params['states']] == [0.0, 0.25, 0.5, 0.75]
    assert params['output'] == str(tmp_path / '00004-record.mp4') and params['height_px'] is None
    assert params['widgets'] == {'latent': {'x': 1.0, 'anim': True}}
    # A second render while the first runs gets the next number (the first has not written its file yet).
    w.set_state({'format': 'png', 'native_size': False, 'height_px': 256})
    assert w.render_states([_req(1.0)], fps=12, view='fft') == 2
    p2 = w.viz.started[1][1]
    assert p2['output'] == str(tmp_path / '00005-record') and p2['height_px'] == 256 and p2['view'] == 'fft'
    assert w.job_id == 1
    w.on_job_update(JobUpdate(1, 'render_video', 'running', 2, 4, 'frame 2/4'))
    assert w.jobs[1].done == 2
    w.on_job_update(JobUpdate(1, 'render_video', 'error', error='frame 2: render failed: boom'))
    assert 'boom' in w.status and w.retry is not None and w.job_id == 2
    w.cancel()
    assert w.viz.cancelled == [2]
    w.on_job_update(JobUpdate(2, 'render_video', 'cancelled'))
    assert 'Cancelled' in w.status and w.job_id is None
    assert w.retry_render() == 3 and w.viz.started[2][1]['states'] == params['states']  # nothing recorded is lost
    result = {'output': 'x.mp4', 'json': 'x.json', 'frames': 4, 'width': 64, 'height': 64, 'fps': 30.0,
              'embedded': True}  # fmt: skip
    w.on_job_update(JobUpdate(3, 'render_video', 'done', 4, 4, result=result, elapsed_sec=2.0))
    assert w.last_result == result and 'Wrote 4 frames' in w.status and 'x.mp4' in w.status


def test_names_and_hostile_values(tmp_path):
    w = RecordWidget(None)
    w.viz = _Viz(tmp_path)
    w.set_state({'fps': -5, 'height_px': 10**12, 'video_view': '3d', 'format': 'gif', 'out_dir': 7, 'name': None})
    assert (w.fps, w.height_px, w.video_view, w.format, w.out_dir, w.name) == (1, 4320, 'image', 'mp4', '', '')
    assert any('fps -5' in n for n in w.viz.notes) and any('3d' in n for n in w.viz.notes)
    w.set_state({'fps': 'many', 'height_px': float('nan')})
    assert (w.fps, w.height_px) == (30, 512)
    w.set_state({'fps': float('inf')})
    assert w.fps == 120
    assert w.render_states([_req(0)], fps=-1) == 1 and w.viz.started[-1][1]['fps'] == 1
    assert w.render_states([_req(0)], fps=30, view='bogus') == 2 and w.viz.started[-1][1]['view'] == 'image'
    assert w.render_states([], fps=30) is None and 'no states' in w.status
    w.set_state({'name': 'my take', 'out_dir': str(tmp_path / 'vids')})
    assert w.output_path() == tmp_path / 'vids' / 'my take.mp4'
    (tmp_path / 'vids').mkdir()
    (tmp_path / 'vids' / 'my take.mp4').write_bytes(b'')
    assert w.output_path().name.endswith('-my take.mp4')  # never overwrites
    w.set_state({'name': '../escape'})
    assert w.output_path().parent == tmp_path / 'vids' and 'record' in w.output_path().name
    assert any('plain file name' in n for n in w.viz.notes)
    assert w.stop() is None  # not recording
    w.start()
    assert w.stop() is None and 'Nothing recorded' in w.status


def test_a_renderer_without_jobs_keeps_the_states_on_disk(tmp_path):
    """A remote render server runs no jobs: the timeline JSON is written where the video would go."""
    import json

    w = RecordWidget(None)
    w.viz = _Viz(tmp_path)
    w.viz.start_job = lambda kind, params: None
    assert w.render_states([_req(0.0), _req(0.5)], fps=12, view='fft') is None
    side = tmp_path / '00000-record.json'
    assert 'cannot render videos' in w.status and str(side) in w.status
    doc = json.loads(side.read_text())
    assert doc['format'] == 'sg3viz-timeline' and doc['fps'] == 12 and doc['view'] == 'fft'
    assert [s['trunc_psi'] for s in doc['states']] == [0.0, 0.5] and w.retry is not None
