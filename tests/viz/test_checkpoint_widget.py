"""Checkpoints pane logic without a window (issue 15): following the loaded network's run, clamped positions, Play,
preload jobs started and cancelled as the position moves, metrics, bad values, remote listing, the scrub timeline."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
import types

import pytest

from engine.protocol import RenderRequest, RenderResult
from tests.viz.fake_renderer import _fake_net
from viz.checkpoint_widget import CheckpointWidget
from viz.frame_view import FrameView
from viz.pickle_widget import PickleWidget

KIMG = (10, 20, 40)


class StubViz:
    """What the pane uses of the app: the Network pane, the frame view, jobs, notes, the capture folder."""

    def __init__(self, browse_dir=None, renderer=None, capture_dir='captures') -> None:
        self.pickle = PickleWidget(None, browse_dir=browse_dir)
        self.view = FrameView()
        self.renderer = renderer
        self.capture = types.SimpleNamespace(capture_dir=capture_dir)
        self.jobs: list = []
        self.cancelled: list = []
        self.notes: list = []

    def start_job(self, kind, params):
        self.jobs.append((kind, params))
        return len(self.jobs)

    def cancel_job(self, job_id):
        self.cancelled.append(job_id)

    def notify(self, text):
        self.notes.append(text)

    def show(self, source: str, resolved: str | None = None) -> None:
        """A result for ``source`` arrived (the Network pane and the frame view see it)."""
        net = dataclasses.replace(_fake_net(source), resolved_path=resolved or source)
        res = RenderResult(stamp=1, net=net, source=source)
        self.view = FrameView(net=net, image_request=RenderRequest(pkl=source, w0_seeds=((7, 1.0),), trunc_psi=0.5))
        self.pickle.on_result(res)


@pytest.fixture
def run(tmp_path) -> pathlib.Path:
    d = tmp_path / 'runs' / '00003-run'
    d.mkdir(parents=True)
    for k in KIMG:
        (d / f'network-snapshot-{k:06d}.pkl').write_bytes(b'FAKENET')
    lines = [json.dumps({'results': {'fid50k_full': 30.0 - k / 10}, 'snapshot_pkl': f'network-snapshot-{k:06d}.pkl'})
             for k in KIMG[:2]] + ['{broken']  # fmt: skip
    (d / 'metric-fid50k_full.jsonl').write_text('\n'.join(lines) + '\n')
    return d


def _snap(run, i) -> str:
    return str(run / f'network-snapshot-{KIMG[i]:06d}.pkl')


def _pane(**kw):
    viz = StubViz(**kw)
    pane = CheckpointWidget(viz)
    return viz, pane


def test_follows_the_loaded_networks_run_and_scrubs_without_touching_recent(run):
    viz, pane = _pane()
    assert pane.refresh() is None and pane.dump()['snapshots'] == []
    viz.pickle.load(_snap(run, 1))
    viz.show(_snap(run, 1))
    assert viz.pickle.recent == [_snap(run, 1)]
    assert [s.kimg for s in pane.refresh().snapshots] == [10.0, 20.0, 40.0]
    assert pane.position() == 1 and pane.displayed_position() == 1
    assert pane.metrics_lines() == ['fid50k_full 28']
    assert any('skipped 1 malformed line' in n for n in pane.run.notes)
    assert pane.step(+1) and viz.pickle.pkl == _snap(run, 2) and pane.position() == 2
    viz.show(_snap(run, 2))
    assert viz.pickle.recent == [_snap(run, 1)]  # scrubbing keeps Recent as it was
    assert pane.metrics_lines() == ['No metrics for this snapshot (fid50k_full recorded for others)']
    assert not pane.step(+1)  # already the newest
    assert pane.step(-1) and viz.pickle.pkl == _snap(run, 1)


def test_a_run_directory_source_is_its_newest_snapshot(run):
    viz, pane = _pane()
    viz.pickle.load(str(run))
    viz.show(str(run), resolved=_snap(run, 2))
    pane.refresh()
    assert pane.position() == 2 and pane.displayed_position() == 2


@pytest.mark.parametrize(
    'typed, index, note',
    [(-5, 0, 'outside #1..#3'), (99, 2, 'outside #1..#3'), (1e300, 2, 'outside'), (1.4, 1, 'whole number'),
     ('2', 2, None), ('abc', None, 'not a number'), (float('nan'), None, 'not a number'), (None, None, 'not a number')],
)  # fmt: skip
def test_positions_are_clamped_with_a_note(run, typed, index, note):
    viz, pane = _pane()
    pane.run_dir = str(run)
    pane.go_to(typed)
    assert pane.position() == index
    if note is None:
        assert viz.notes == []
    else:
        assert any(note in n for n in viz.notes), viz.notes


def test_bad_state_values_are_clamped_with_notes():
    viz, pane = _pane()
    pane.set_state({'seconds_per_snapshot': -3, 'fps': 0})
    assert pane.seconds_per_snapshot == 0.05 and pane.fps == 1
    pane.set_state({'seconds_per_snapshot': 1e12, 'fps': 1e9})
    assert pane.seconds_per_snapshot == 600.0 and pane.fps == 120
    pane.set_state({'seconds_per_snapshot': 'fast', 'fps': 'x', 'run_dir': None, 'anim': 'yes'})
    assert pane.seconds_per_snapshot == 600.0 and pane.fps == 8 and pane.run_dir == '' and pane.anim is True
    pane.set_state({'fps': 12.5})
    assert pane.fps == 12
    assert sum('clamped' in n for n in viz.notes) >= 4 and any('not a number' in n for n in viz.notes)
    assert json.loads(json.dumps(pane.get_state()))['fps'] == 12  # session state stays plain JSON


def test_play_waits_for_each_snapshot_to_be_shown_then_loops_or_stops(run):
    viz, pane = _pane()
    pane.run_dir = str(run)
    pane.set_state({'seconds_per_snapshot': 1.0, 'anim': True, 'loop': False})
    pane.update_request({}, 0.1)  # not in the run yet: Play starts at the oldest
    assert viz.pickle.pkl == _snap(run, 0)
    pane.update_request({}, 5.0)  # still loading: the time does not count
    assert viz.pickle.pkl == _snap(run, 0)
    viz.show(_snap(run, 0))
    pane.update_request({}, 0.6)
    assert viz.pickle.pkl == _snap(run, 0)
    pane.update_request({}, 0.6)
    assert viz.pickle.pkl == _snap(run, 1)
    viz.show(_snap(run, 1))
    pane.update_request({}, 1.0)
    viz.show(_snap(run, 2))
    pane.update_request({}, 1.0)
    assert pane.anim is False and 'newest' in pane.status  # no loop: stops at the end
    pane.set_state({'anim': True, 'loop': True})
    pane.update_request({}, 1.0)
    assert viz.pickle.pkl == _snap(run, 0)  # loop: back to the oldest


def test_play_stops_when_a_snapshot_fails_to_load(run):
    viz, pane = _pane()
    pane.run_dir = str(run)
    viz.pickle.load(_snap(run, 0))
    viz.show(_snap(run, 0))
    pane.play(True)
    pane.go_to(1)
    viz.pickle.on_result(RenderResult(stamp=2, source=_snap(run, 1), load_failed=True, error='broken'))
    pane.update_request({}, 0.1)
    assert pane.anim is False and 'failed' in pane.status and viz.pickle.pkl == _snap(run, 0)


def test_preload_follows_the_position_and_cancels_when_it_moves(run):
    viz, pane = _pane()
    viz.pickle.load(_snap(run, 0))
    viz.show(_snap(run, 0))
    pane.update_request({}, 0.0)
    assert viz.jobs == []  # the pane is closed and not playing: nothing is loaded ahead
    pane._visible_until = time.monotonic() + 60  # drawn (open)
    pane.update_request({}, 0.0)
    assert viz.jobs == [('preload_networks', {'sources': [_snap(run, 1), _snap(run, 2)], 'trust': False})]
    assert pane.preload_text() == 'Preload: kimg 20 loading, kimg 40 loading'
    pane.on_job_update(types.SimpleNamespace(job_id=1, state='running', data={'state': {_snap(run, 1): 'ready'}},
                                             result=None, is_final=False, error=None))  # fmt: skip
    assert pane.preload_text() == 'Preload: kimg 20 ready, kimg 40 loading'
    pane.go_to(2)
    pane.update_request({}, 0.0)
    assert viz.cancelled == [1]  # the old neighbours' job is cancelled
    assert viz.jobs[-1][1]['sources'] == [_snap(run, 1), _snap(run, 0)]  # moving back from the end
    assert pane.preload_state == {_snap(run, 1): 'ready', _snap(run, 0): 'loading'}
    pane.on_job_update(types.SimpleNamespace(job_id=2, state='done', data=None, is_final=True, error=None,
                                             result={'state': {_snap(run, 1): 'ready', _snap(run, 0): 'failed'},
                                                     'errors': {_snap(run, 0): 'bad file'}}))  # fmt: skip
    assert pane.preload_job_id is None and 'kimg 10 failed' in pane.preload_text()
    pane.set_state({'preload': False})
    pane.update_request({}, 0.0)
    assert pane.preload_text() == 'Preload: off' and len(viz.jobs) == 2


def test_timeline_keeps_the_shown_latent_and_view(run, tmp_path):
    viz, pane = _pane(capture_dir=str(tmp_path / 'caps'))
    pane.run_dir = str(run)
    assert pane.save_timeline() is None and 'nothing rendered yet' in pane.status
    viz.show(_snap(run, 1))
    path = pane.save_timeline()
    assert path == tmp_path / 'caps' / 'scrub-keyframes.json'
    doc = json.loads(path.read_text())
    assert [k['state']['pkl'] for k in doc['keyframes']] == [_snap(run, i) for i in range(3)]
    assert all(k['state']['w0_seeds'] == [[7, 1.0]] and k['state']['trunc_psi'] == 0.5 for k in doc['keyframes'])
    assert all(k['duration'] == 1.0 for k in doc['keyframes']) and doc['fps'] == 8.0
    assert 'gen_video.py --timeline' in pane.status


def test_render_video_uses_the_record_pane_or_says_what_to_do(run):
    viz, pane = _pane()
    pane.run_dir = str(run)
    viz.show(_snap(run, 0))
    assert not pane.render_video() and 'gen_video.py --timeline' in pane.status
    calls = []
    viz.record = types.SimpleNamespace(render_states=lambda states, **kw: calls.append((states, kw)) and None,
                                       status='This renderer cannot render videos')  # fmt: skip
    pane.set_state({'seconds_per_snapshot': 0.5, 'fps': 4})
    assert not pane.render_video() and 'cannot render videos' in pane.status  # the Record pane's reason
    viz.record.render_states = lambda states, **kw: calls.append((states, kw)) or 12
    viz.get_session = lambda: {'widgets': {'pickle': {'pkl': _snap(run, 2), 'recent': []}, 'latent': {'x': 7.0}}}
    viz.set_section_open = lambda key, is_open: calls.append(('open', key, is_open))
    assert pane.render_video()
    (states, kw), opened = calls[-2:]
    assert [s.pkl for s in states] == [_snap(run, i) for i in (0, 0, 1, 1, 2, 2)]
    assert all(s.w0_seeds == ((7, 1.0),) and s.trunc_psi == 0.5 for s in states)
    assert kw['fps'] == 4.0 and kw['view'] is None and kw['name'] == 'scrub-00003-run'
    assert kw['widgets'] == {'pickle': {'pkl': _snap(run, 0), 'recent': []}, 'latent': {'x': 7.0}}  # first frame's
    assert opened == ('open', 'record', True) and 'Rendering 6 frames (3 snapshots)' in pane.status


def test_chosen_run_from_browse_dir(run):
    viz, pane = _pane(browse_dir=str(run.parent))
    assert pane._list_runs() == [(str(run), 3)]
    pane.set_state({'run_dir': str(run)})
    assert pane.refresh().run_dir == str(run) and pane.position() is None
    assert pane.step(-1) and viz.pickle.pkl == _snap(run, 2)  # from outside the run, Prev goes to the newest


class FakeRemote:
    """A RemoteRenderer's listing (server paths that do not exist here)."""

    allows_trust = False

    def __init__(self):
        self.asked = 0

    def request_file_list(self):
        self.asked += 1

    def file_list(self):
        if not self.asked:  # like RemoteRenderer: nothing until the list was asked for
            return None, [], None
        pkls = ['/srv/runs/00001-a/network-snapshot-000100.pkl', '/srv/runs/00001-a/network-snapshot-000050.pkl']
        return '/srv/runs', [('/srv/runs/00001-a', pkls), ('/srv/runs/loose', ['/srv/runs/loose/net.pkl'])], None


def test_remote_mode_lists_the_servers_runs_and_says_what_does_not_work():
    remote = FakeRemote()
    viz, pane = _pane(renderer=remote)
    viz.pickle.load('/srv/runs/00001-a/network-snapshot-000100.pkl')
    run = pane.refresh()
    assert [s.kimg for s in run.snapshots] == [50.0, 100.0] and pane.position() == 1 and remote.asked >= 1
    assert pane._list_runs() == [('/srv/runs/00001-a', 2)]  # the folder without snapshots is not offered
    assert pane.metrics_lines() == ['Metrics: not available from the render server']
    pane._visible_until = time.monotonic() + 60
    pane.update_request({}, 0.0)
    assert viz.jobs == [] and 'not available when rendering on a server' in pane.preload_text()
    assert pane.step(-1) and viz.pickle.pkl == '/srv/runs/00001-a/network-snapshot-000050.pkl'
