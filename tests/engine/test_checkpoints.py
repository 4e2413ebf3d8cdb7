"""Checkpoint scrubbing (issue 15): a tiny real training run with two snapshots -- listing by kimg, metrics mapped to
snapshots, the scrub timeline rendering frames equal to individual renders, preloading into the network cache, and
gen_video.py --scrub."""

from __future__ import annotations

import json
import pathlib
import threading
import time

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

from engine import checkpoints
from engine.checkpoints import (
    load_run,
    make_scrub_timeline,
    preload_job,
    preload_order,
    read_metrics,
    run_of,
    scrub_runs,
)
from engine.jobs import JobError, JobRunner, JobSpec
from engine.net_cache import NetCache
from engine.protocol import RenderRequest
from engine.renderer import Renderer
from tests.engine.scrub_run import SNAPSHOT_NAMES, make_tiny_run


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory) -> pathlib.Path:
    return make_tiny_run(tmp_path_factory.mktemp('scrub'))


def _paths(run: pathlib.Path) -> list[str]:
    return [str(run / n) for n in SNAPSHOT_NAMES]


# ---- listing and metrics -------------------------------------------------------------------------------------------
def test_run_lists_snapshots_by_kimg_with_their_metrics(tiny_run):
    run = load_run(tiny_run)
    assert [s.name for s in run.snapshots] == list(SNAPSHOT_NAMES)  # oldest first
    assert [s.nimg for s in run.snapshots] == [4, 8] and [s.kimg_text for s in run.snapshots] == ['0.004', '0.008']
    assert run.snapshots[0].metrics == {'fid50k_full': 41.5}
    assert run.snapshots[1].metrics == {'fid50k_full': 37.25, 'eqt50k_int': 20.5}
    assert run.metric_names == ('eqt50k_int', 'fid50k_full') and run.notes == ()
    assert run.index_of(_paths(tiny_run)[0]) == 0 and run.index_of(str(tiny_run)) == 1  # a run dir = its newest
    assert run.index_of(str(tiny_run / 'reals.png')) is None and run.index_of(None) is None


def test_run_of_a_snapshot_a_run_dir_and_others(tiny_run, tmp_path):
    assert run_of(_paths(tiny_run)[0]) == tiny_run
    assert run_of(str(tiny_run)) == tiny_run
    assert run_of(None) is None and run_of('https://example.org/net.pkl') is None
    loose = tmp_path / 'net.pkl'
    loose.write_bytes(b'x')
    assert run_of(str(loose)) is None  # a pickle outside any run
    assert run_of(str(tmp_path)) is None  # a folder without snapshots
    assert scrub_runs(tiny_run.parent) == [(str(tiny_run), 2)]
    assert scrub_runs(None) == [] and scrub_runs(tmp_path / 'missing') == []


def test_a_new_snapshot_changes_the_run_signature(tmp_path):
    (tmp_path / 'network-snapshot-000010.pkl').write_bytes(b'x')
    sig = checkpoints.run_signature(tmp_path)
    time.sleep(0.02)
    (tmp_path / 'network-snapshot-000020.pkl').write_bytes(b'x')
    assert checkpoints.run_signature(tmp_path) != sig
    assert [s.kimg for s in load_run(tmp_path).snapshots] == [10.0, 20.0]


def test_metric_lines_malformed_skipped_with_a_note_later_lines_win(tmp_path):
    lines = [
        json.dumps({'results': {'fid50k_full': 9.0}, 'snapshot_pkl': 'network-snapshot-000010.pkl'}),
        'this is not json',
        '[1, 2]',
        json.dumps({'results': {'fid50k_full': 1.0}}),  # no snapshot
        json.dumps({'snapshot_pkl': 'network-snapshot-000010.pkl'}),  # no results
        json.dumps({'results': {'fid50k_full': 'bad', 'ok': True}, 'snapshot_pkl': 'network-snapshot-000010.pkl'}),
        '',
        json.dumps({'results': {'fid50k_full': 7.5}, 'snapshot_pkl': '/elsewhere/network-snapshot-000010.pkl'}),
        json.dumps(
            {
                'results': {'pr50k3_full_precision': 0.5, 'pr50k3_full_recall': 0.25},
                'snapshot_pkl': 'C:\\runs\\00001\\network-snapshot-000020.pkl',
            }
        ),  # fmt: skip
    ]
    (tmp_path / 'metric-fid50k_full.jsonl').write_text('\n'.join(lines) + '\n')
    (tmp_path / 'metric-empty.jsonl').write_text('')
    by_file, notes = read_metrics(tmp_path)
    assert by_file == {
        'network-snapshot-000010.pkl': {'fid50k_full': 7.5},  # the later line replaces the earlier one
        'network-snapshot-000020.pkl': {'pr50k3_full_precision': 0.5, 'pr50k3_full_recall': 0.25},
    }
    assert len(notes) == 1 and 'skipped 5 malformed lines' in notes[0] and 'line 2: not JSON' in notes[0], notes


def test_metric_files_are_bounded(tmp_path, monkeypatch):
    line = json.dumps({'results': {'m': 1.0}, 'snapshot_pkl': 'network-snapshot-000001.pkl'})
    last = json.dumps({'results': {'m': 2.0}, 'snapshot_pkl': 'network-snapshot-000001.pkl'})
    (tmp_path / 'metric-m.jsonl').write_text((line + '\n') * 1000 + last + '\n')
    monkeypatch.setattr(checkpoints, 'MAX_METRIC_BYTES', 10 * len(line))
    by_file, notes = read_metrics(tmp_path)
    assert by_file == {'network-snapshot-000001.pkl': {'m': 2.0}}  # the tail (newest lines) is read
    assert any('large file' in n for n in notes) and not any('malformed' in n for n in notes), notes
    monkeypatch.setattr(checkpoints, 'MAX_METRIC_FILES', 1)
    (tmp_path / 'metric-n.jsonl').write_text(line + '\n')
    _, notes = read_metrics(tmp_path)
    assert any('2 metric files; reading the first 1' in n for n in notes)


def test_preload_order_nearest_first_moving_side_first():
    assert preload_order(10, 4, 3, +1) == [5, 3, 6]
    assert preload_order(10, 4, 3, -1) == [3, 5, 2]
    assert preload_order(10, 9, 2, +1) == [8, 7]  # at the end: only behind
    assert preload_order(2, 0, 5) == [1] and preload_order(1, 0, 2) == [] and preload_order(0, 0, 2) == []
    assert preload_order(5, -7, 2) == [1, 2] and preload_order(5, 99, 1) == [3]  # clamped positions


# ---- scrub timeline ------------------------------------------------------------------------------------------------
def test_scrub_timeline_renders_the_snapshots_frames_equal_to_individual_renders(tiny_run, tmp_path):
    import gen_video
    from engine.states import load_timeline, write_json

    # psi 0.7 at 6 frames per snapshot: (5/6) * 0.7 + (1/6) * 0.7 != 0.7 in floating point, so this also checks that
    # a value equal in both keyframes is held exactly (engine.states.interpolate_states).
    base = RenderRequest(w0_seeds=((3, 1.0),), trunc_psi=0.7, device='cpu')
    run = load_run(tiny_run)
    doc = make_scrub_timeline(run.snapshots, base, seconds_per_snapshot=1.0, fps=6)
    assert [k['state']['pkl'] for k in doc['keyframes']] == _paths(tiny_run) and doc['loop'] is True
    path = write_json(tmp_path / 'scrub.json', doc)
    states, fps, view = load_timeline(path)
    assert fps == 6 and view == 'image'
    assert [s.pkl for s in states] == [_paths(tiny_run)[0]] * 6 + [_paths(tiny_run)[1]] * 6
    assert all(s.replace(pkl=None) == base for s in states)  # only the network changes, exactly
    renderer = Renderer('cpu')
    count = gen_video.render_timeline(path, str(tmp_path / 'frames'), progress=False, renderer=renderer)
    assert count == 12
    frames = [np.asarray(PIL.Image.open(tmp_path / 'frames' / f'{i:04d}.png')) for i in range(12)]
    singles = [Renderer('cpu').render(base.replace(pkl=p)).image for p in _paths(tiny_run)]
    assert not np.array_equal(singles[0], singles[1])  # the two snapshots draw different images
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(frame, singles[i // 6], err_msg=f'frame {i}')


def test_scrub_timeline_arguments_are_checked():
    base = RenderRequest()
    with pytest.raises(ValueError, match='snapshots must not be empty'):
        make_scrub_timeline([], base, seconds_per_snapshot=1, fps=8)
    for sec in (0, -1, 1e9, float('nan'), True, '1'):
        with pytest.raises(ValueError, match='seconds_per_snapshot'):
            make_scrub_timeline(['a.pkl'], base, seconds_per_snapshot=sec, fps=8)
    with pytest.raises(ValueError, match='fps'):
        make_scrub_timeline(['a.pkl'], base, seconds_per_snapshot=1, fps=0)
    with pytest.raises(ValueError, match='view'):
        make_scrub_timeline(['a.pkl'], base, seconds_per_snapshot=1, fps=8, view='layer')
    one = make_scrub_timeline(['a.pkl'], base, seconds_per_snapshot=1, fps=8)  # one snapshot still renders
    assert [k['state']['pkl'] for k in one['keyframes']] == ['a.pkl', 'a.pkl']


def test_gen_video_scrub_cli_writes_frames_and_a_timeline_that_reproduces_them(tiny_run, tmp_path):
    import gen_video

    out = tmp_path / 'scrub'
    args = ['--scrub', str(tiny_run), '--seeds', '5', '--fps', '2', '--seconds-per-snapshot', '1', '--device', 'cpu']
    r = CliRunner().invoke(gen_video.main, [*args, '--output', f'{out}/'])
    assert r.exit_code == 0, r.output
    side = out / 'keyframes.json'
    assert side.is_file() and f'--timeline {side}' in r.output
    assert sorted(p.name for p in out.glob('*.png')) == [f'{i:04d}.png' for i in range(4)]
    again = tmp_path / 'again'
    r = CliRunner().invoke(gen_video.main, ['--timeline', str(side), '--output', f'{again}/'])
    assert r.exit_code == 0, r.output
    for i in range(4):
        assert (out / f'{i:04d}.png').read_bytes() == (again / f'{i:04d}.png').read_bytes()
    expected = Renderer('cpu').render(RenderRequest(pkl=_paths(tiny_run)[1], w0_seeds=((5, 1.0),))).image
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(out / '0003.png')), expected)


@pytest.mark.parametrize(
    'extra, fragment',
    [
        (['--seeds', '0-3'], 'one seed'),
        (['--grid', '2x1'], '--grid'),
        (['--timeline', 'x.json'], '--timeline'),
        (['--seconds-per-snapshot', '0'], '0.05'),
        (['--seconds-per-snapshot', 'abc'], 'abc'),
    ],
)
def test_gen_video_scrub_cli_errors_are_clear(tmp_path, extra, fragment):
    import gen_video

    (tmp_path / 'network-snapshot-000001.pkl').write_bytes(b'x')
    r = CliRunner().invoke(gen_video.main, ['--scrub', str(tmp_path), *extra, '--output', str(tmp_path / 'o.mp4')])
    assert r.exit_code != 0 and fragment in r.output and 'Traceback' not in r.output, r.output


def test_gen_video_scrub_of_a_folder_without_snapshots_and_spp_without_scrub(tmp_path):
    import gen_video

    r = CliRunner().invoke(gen_video.main, ['--scrub', str(tmp_path), '--output', str(tmp_path / 'o.mp4')])
    assert r.exit_code != 0 and 'network-snapshot-*.pkl' in r.output, r.output
    r = CliRunner().invoke(gen_video.main, ['--seconds-per-snapshot', '2', '--output', str(tmp_path / 'o.mp4')])
    assert r.exit_code != 0 and 'needs --scrub' in r.output, r.output


# ---- preloading ----------------------------------------------------------------------------------------------------
class CountingRenderer(Renderer):
    """The real renderer whose network cache records every load (``loads``: sources in load order)."""

    loads: list = []

    def __init__(self, device: str = 'cpu') -> None:
        super().__init__(device)
        from engine import loading

        def loader(source, trust):
            type(self).loads.append(source)
            G, path = loading.load_generator_and_path(source, trust=trust)
            return G, str(path)

        self.net_cache = NetCache(on_evict=self._forget, loader=loader)


def _run_job(renderer, params) -> list:
    updates: list = []
    runner = JobRunner(renderer, updates.append)
    runner.handle(('job_start', JobSpec(1, 'preload_networks', params)))
    deadline = time.monotonic() + 120
    while not (updates and updates[-1].is_final) and time.monotonic() < deadline:
        runner.step()
    return updates


def test_preload_job_loads_the_next_snapshot_before_it_is_shown(tiny_run):
    CountingRenderer.loads = []
    r = CountingRenderer('cpu')
    first, second = _paths(tiny_run)
    shown = r.render(RenderRequest(pkl=first, device='cpu'))
    assert shown.error is None and CountingRenderer.loads == [first]
    updates = _run_job(r, {'sources': [second, 'no/such/network-snapshot-000001.pkl']})
    final = updates[-1]
    assert final.state == 'done', final
    assert final.result['state'] == {second: 'ready', 'no/such/network-snapshot-000001.pkl': 'failed'}
    assert 'not found' in final.result['errors']['no/such/network-snapshot-000001.pkl']
    assert any(u.data and u.data['state'].get(second) == 'loading' for u in updates)  # progress while loading
    assert r.net_cache.state(second, False) == 'ready'
    assert CountingRenderer.loads == [first, second, 'no/such/network-snapshot-000001.pkl']
    res = r.try_render(RenderRequest(pkl=second, device='cpu'))  # non-blocking: ready at once, no new load
    assert res is not None and res.error is None and res.source == second
    assert len(CountingRenderer.loads) == 3


def test_preload_is_bounded_by_the_cache_and_cancellable():
    gate = threading.Event()
    loads: list = []

    def slow_loader(source, trust):
        loads.append(source)
        gate.wait(30)
        raise ValueError('not a network')

    r = Renderer('cpu')
    r.net_cache = NetCache(loader=slow_loader, max_pkls=3)
    updates: list = []
    runner = JobRunner(r, updates.append)
    runner.handle(('job_start', JobSpec(7, 'preload_networks', {'sources': ['a.pkl', 'b.pkl', 'c.pkl', 'd.pkl']})))
    for _ in range(3):
        runner.step()
    assert loads == ['a.pkl', 'b.pkl']  # cache of 3: the shown network + 2 ahead
    runner.cancel(7)
    assert updates[-1].state == 'cancelled'
    gate.set()
    with pytest.raises(JobError, match='network cache'):
        next(preload_job(object(), sources=['a.pkl']))
    with pytest.raises(JobError, match='list of paths'):
        next(preload_job(r, sources='a.pkl'))


def test_preload_through_the_render_worker(tiny_run):
    from engine.async_renderer import AsyncRenderer

    CountingRenderer.loads = []
    first, second = _paths(tiny_run)
    with AsyncRenderer(
        device='cpu', separate_process=False, renderer='tests.engine.test_checkpoints:CountingRenderer'
    ) as ar:
        stamp = ar.set_request(RenderRequest(pkl=first, device='cpu'))
        deadline = time.monotonic() + 120
        while ((res := ar.get_result()) is None or res.stamp < stamp) and time.monotonic() < deadline:
            time.sleep(0.02)
        job = ar.start_job('preload_networks', {'sources': [second]})
        done = None
        while done is None and time.monotonic() < deadline:
            done = next((u for u in ar.job_updates() if u.job_id == job and u.is_final), None)
            time.sleep(0.02)
        assert done is not None and done.state == 'done' and done.result['state'] == {second: 'ready'}
        stamp = ar.set_request(RenderRequest(pkl=second, device='cpu'))
        while ((res := ar.get_result()) is None or res.stamp < stamp) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert res.error is None and res.source == second
    assert CountingRenderer.loads == [first, second]  # shown from the preloaded copy: loaded once


def test_concurrent_safe_loads_do_not_race_in_the_ast_parser():
    """Preloading runs safe-mode loads in several threads at once. On CPython 3.11 two threads in ast.parse() could
    fail with "SystemError: AST constructor recursion depth mismatch" (seen in the GUI as a snapshot that failed to
    preload, then stayed failed); a thread switch inside the parser is forced here by finalizers run by the garbage
    collector. Without the lock in engine.safe_pickle this failed about 1 parse in 15."""
    import gc
    import inspect
    import sys

    from engine import safe_pickle
    from training import networks_stylegan3

    class Finalized:
        def __del__(self):
            sum(range(50))

    src = inspect.getsource(networks_stylegan3)
    errors: list = []

    def work(k: int) -> None:
        for i in range(40):
            try:
                assert 'Generator' in safe_pickle._defined_classes(f'{src}\n# thread {k} parse {i}\n')
            except Exception as e:  # noqa: BLE001 -- collected and reported below
                errors.append(repr(e))
            a, b = Finalized(), Finalized()
            a.other, b.other = b, a  # a cycle: freed by the collector, which runs __del__ (Python code)

    old_interval, old_threshold = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(50, 5, 5)
    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old_interval)
        gc.set_threshold(*old_threshold)
    assert errors == [], f'{len(errors)} of 160 parses failed: {errors[:2]}'
