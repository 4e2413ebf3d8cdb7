"""engine.async_renderer: render process round trip, stale results, restart after a crash, in-process mode,
shared memory, and the import rules (no torch in the GUI process, no GUI code in the render process).

One render process is shared by the module (spawning one imports torch: seconds on a busy machine).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest
import torch

from engine.async_renderer import AsyncRenderer
from engine.protocol import RenderRequest, RenderResult
from tests.engine.probe_renderer import probe

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT_SEC = 180.0  # Generous: the machine running the suite may be very busy; a healthy run takes seconds.


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    """Tiny networks render much faster with one thread on a busy shared machine."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def _wait_result(r: AsyncRenderer) -> RenderResult:
    deadline = time.monotonic() + TIMEOUT_SEC
    while time.monotonic() < deadline:
        res = r.get_result()
        if res is not None:
            return res
        time.sleep(0.01)
    raise AssertionError('no result from the renderer')


def _wait_idle(r: AsyncRenderer) -> list[RenderResult]:
    """Every result delivered until the renderer has answered its newest request."""
    results = []
    deadline = time.monotonic() + TIMEOUT_SEC
    while time.monotonic() < deadline:
        res = r.get_result()
        if res is not None:
            results.append(res)
        elif not r.is_busy:
            return results
        time.sleep(0.01)
    raise AssertionError('the renderer stayed busy')


def _shm_files(prefixes) -> list[str]:
    return sorted(f for p in prefixes for f in glob.glob(f'/dev/shm/{p}*'))


@pytest.fixture(scope='module')
def shm_prefixes() -> list[str]:
    return []


@pytest.fixture(scope='module')
def async_r(tiny_sg3_pkl, tmp_path_factory, shm_prefixes):
    """A separate-process renderer (arrays always via shared memory), started while ``__main__`` is a script that
    must not run in the render process (it would leave a marker file)."""
    d = tmp_path_factory.mktemp('fake_main')
    marker = d / 'gui_main_ran'
    script = d / 'fake_gui_main.py'
    script.write_text(f'open({str(marker)!r}, "w").close()\n')
    fake_main = types.ModuleType('__main__')
    fake_main.__file__ = str(script)
    mp = pytest.MonkeyPatch()
    mp.setenv('OMP_NUM_THREADS', '1')  # Tiny networks; the render process inherits the environment.
    r = AsyncRenderer(
        'cpu', separate_process=True, shm_min_bytes=0, renderer='tests.engine.probe_renderer:ProbeRenderer'
    )
    try:
        with pytest.MonkeyPatch.context() as main_mp:
            main_mp.setitem(sys.modules, '__main__', fake_main)
            r.set_request(RenderRequest(pkl=tiny_sg3_pkl))
        shm_prefixes.append(r._backend._names.prefix)
        first = _wait_result(r)
        assert first.error is None, first.error
        assert not marker.exists(), 'the render process ran the GUI main script'
        yield r
    finally:
        r.close()
        mp.undo()
    if os.path.isdir('/dev/shm'):
        assert _shm_files(shm_prefixes) == [], 'leaked shared memory'


def test_round_trip_matches_renderer(async_r, tiny_sg3_pkl):
    from engine.renderer import Renderer

    req = RenderRequest(pkl=tiny_sg3_pkl, w0_seeds=((3, 1.0),), fft_show=True)
    async_r.set_request(req)
    res = _wait_result(async_r)
    assert res.error is None and res.stamp == async_r._last_req.stamp
    assert res.image.shape == (16, 16, 3) and res.image.dtype == np.uint8 and res.fft.shape == (16, 16, 3)
    assert res.net.arch == 'stylegan3' and res.layers[-1].name == 'output' and res.device == 'cpu'
    assert res.available_devices and res.available_devices[-1] == 'cpu'
    expected = Renderer('cpu').render(req)
    np.testing.assert_array_equal(res.image, expected.image)
    np.testing.assert_array_equal(res.fft, expected.fft)
    if os.path.isdir('/dev/shm'):
        assert _shm_files([async_r._backend._names.prefix]) == []  # freed once delivered


def test_child_imports_no_gui(async_r):
    modules = probe(async_r, TIMEOUT_SEC)['modules']
    assert 'torch' in modules and 'engine.renderer' in modules
    gui = [m for m in modules if m.split('.')[0] in ('imgui_bundle', 'imgui', 'glfw', 'OpenGL', 'viz', 'gui_utils')]
    assert gui == []


def test_unchanged_request_not_rendered_again(async_r, tiny_sg3_pkl):
    req = RenderRequest(pkl=tiny_sg3_pkl, w0_seeds=((5, 1.0),))
    async_r.set_request(req)
    _wait_idle(async_r)
    stamp = async_r._last_req.stamp
    async_r.set_request(dataclasses.replace(req, stamp=12345))  # equal: the stamp does not count
    assert not async_r.is_busy and async_r._last_req.stamp == stamp
    assert async_r.get_result() is None


def test_newest_result_wins(async_r, tiny_sg3_pkl):
    for seed in range(10, 16):
        async_r.set_request(RenderRequest(pkl=tiny_sg3_pkl, w0_seeds=((seed, 1.0),)))
    results = _wait_idle(async_r)
    stamps = [res.stamp for res in results]
    assert stamps and stamps == sorted(set(stamps)) and stamps[-1] == async_r._last_req.stamp
    assert all(res.error is None for res in results)


def test_stale_results_dropped():
    r = AsyncRenderer(separate_process=False)  # No worker is started: results are fed by hand.
    r._offer(RenderResult(stamp=3))
    r._offer(RenderResult(stamp=2))
    assert r.get_result().stamp == 3
    r._offer(RenderResult(stamp=1))  # older than the one delivered
    assert r.get_result() is None
    r._offer(RenderResult(stamp=5))
    r._offer(RenderResult(stamp=4))
    assert r.get_result().stamp == 5 and r.get_result() is None
    r.close()


def test_in_process_mode(tiny_sg3_pkl):
    with AsyncRenderer('cpu', separate_process=False) as r:
        r.set_request(RenderRequest(pkl=tiny_sg3_pkl, w0_seeds=((7, 1.0),)))
        res = _wait_result(r)
        assert res.error is None and res.image.shape == (16, 16, 3) and r.pid is None and not r.separate_process
    with pytest.raises(RuntimeError):
        r.set_request(RenderRequest())


def test_switch_modes_and_crash(async_r, tiny_sg3_pkl, shm_prefixes):
    """separate -> in-process -> separate; the new render process is killed while it has a request in flight: the
    next result reports the crash, the restarted process renders the request that was in flight, and later ones."""
    req = RenderRequest(pkl=tiny_sg3_pkl, w0_seeds=((8, 1.0),))
    async_r.set_request(req)
    in_process = _wait_idle(async_r)[-1]
    resend_stamp = async_r.set_separate_process(False)  # the current request is rendered again by the new worker
    assert resend_stamp == in_process.stamp + 1 and async_r.pid is None and not async_r.separate_process
    threaded = _wait_idle(async_r)[-1]
    assert threaded.error is None and threaded.stamp == in_process.stamp + 1 == async_r.last_stamp
    np.testing.assert_array_equal(threaded.image, in_process.image)

    async_r.set_separate_process(True)
    shm_prefixes.append(async_r._backend._names.prefix)
    pid = async_r.pid
    assert pid is not None and async_r.is_busy
    os.kill(pid, signal.SIGKILL)
    async_r._backend._proc.join(TIMEOUT_SEC)
    assert async_r.is_restarting
    notice = _wait_result(async_r)
    assert notice.error == f'render process died (exit code {-signal.SIGKILL}); restarted'
    assert notice.available_devices == in_process.available_devices != ()
    shm_prefixes.append(async_r._backend._names.prefix)
    assert async_r.pid not in (None, pid)
    resent = _wait_result(async_r)
    assert resent.error is None and resent.stamp == notice.stamp and not async_r.is_restarting
    np.testing.assert_array_equal(resent.image, in_process.image)
    async_r.set_request(RenderRequest(pkl=tiny_sg3_pkl, w0_seeds=((22, 1.0),)))
    again = _wait_result(async_r)
    assert again.error is None and again.stamp > resent.stamp and again.image.shape == (16, 16, 3)


def test_import_keeps_torch_out():
    code = 'import sys, engine.async_renderer, engine.protocol; print("torch" in sys.modules)'
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_SEC)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'False'


def test_render_process_priority_and_threads(async_r):
    info = probe(async_r, TIMEOUT_SEC)
    if hasattr(os, 'nice'):
        assert info['nice'] == min(os.nice(0) + 5, 19)
    assert info['num_threads'] == 1  # OMP_NUM_THREADS=1 (the fixture's): the user's choice is kept


def test_tune_render_process(monkeypatch):
    import engine.render_worker as ar

    nices: list = []
    threads: list = []
    monkeypatch.setattr(os, 'nice', lambda inc: nices.append(inc) or 0, raising=False)
    monkeypatch.setattr(torch, 'set_num_threads', threads.append)
    monkeypatch.setattr(ar, '_usable_cpus', lambda: 4)
    for name in ar._THREAD_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    ar._tune_render_process(None)
    assert nices == [5] and threads == [3]
    monkeypatch.setattr(ar, '_usable_cpus', lambda: 1)
    ar._tune_render_process(None)
    assert threads == [3, 1]
    monkeypatch.setenv('OMP_NUM_THREADS', '2')
    ar._tune_render_process(None)
    assert threads == [3, 1]  # set by the user
    ar._tune_render_process(6)
    assert threads == [3, 1, 6]

    def deny(_inc):
        raise PermissionError('not allowed')

    monkeypatch.setattr(os, 'nice', deny)
    ar._tune_render_process(2)  # errors are ignored
    monkeypatch.delattr(os, 'nice')
    ar._tune_render_process(2)  # no os.nice (Windows)
    assert threads == [3, 1, 6, 2, 2]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match='num_threads'):
            AsyncRenderer(num_threads=bad)


def test_caller_stamps(tiny_sg3_pkl):
    """A nonzero stamp newer than the last one is kept (the GUI numbers its requests); others are renumbered."""
    with AsyncRenderer('cpu', separate_process=False) as r:
        assert r.last_stamp == 0
        assert r.set_request(RenderRequest(pkl=tiny_sg3_pkl, stamp=10)) == 10
        assert r.last_stamp == 10 and _wait_result(r).stamp == 10
        assert r.set_request(RenderRequest(pkl=tiny_sg3_pkl, w0_seeds=((1, 1.0),), stamp=11)) == 11
        assert r.last_stamp == 11 and _wait_result(r).stamp == 11
        assert r.set_request(RenderRequest(pkl=tiny_sg3_pkl, w0_seeds=((2, 1.0),), stamp=4)) == 12  # not newer
        assert r.last_stamp == 12 and _wait_result(r).stamp == 12
        assert r.set_request(RenderRequest(pkl=tiny_sg3_pkl, w0_seeds=((3, 1.0),))) == 13  # 0: numbered here
        assert r.last_stamp == 13 and _wait_result(r).stamp == 13
        assert r.set_request(RenderRequest(pkl=tiny_sg3_pkl, w0_seeds=((3, 1.0),), stamp=99)) == 13  # equal: filtered
        assert r.get_result() is None and not r.is_busy
        assert r.set_separate_process(False) is None  # no switch, nothing re-sent


def test_newer_network_does_not_wait_for_older_load(tiny_sg3_pkl, tmp_path, monkeypatch):
    """While a slow network loads, a request for another network is answered at once; the abandoned load finishes
    in the background and is cached; close() does not wait for a load."""
    import engine.net_cache as renderer_mod

    slow = str(tmp_path / 'slow.pkl')
    stuck = str(tmp_path / 'stuck.pkl')
    for path in (slow, stuck):
        shutil.copy(tiny_sg3_pkl, path)
    started = {slow: threading.Event(), stuck: threading.Event()}
    release = {slow: threading.Event(), stuck: threading.Event()}
    calls: list = []
    load = renderer_mod._load_generator

    def slow_load(source, trust):
        calls.append(source)
        if source in started:
            started[source].set()
            assert release[source].wait(TIMEOUT_SEC)
        return load(source, trust)

    monkeypatch.setattr(renderer_mod, '_load_generator', slow_load)
    try:
        with AsyncRenderer('cpu', separate_process=False) as r:
            r.set_request(RenderRequest(pkl=slow))
            assert started[slow].wait(TIMEOUT_SEC)
            r.set_request(RenderRequest(pkl=slow, w0_seeds=((1, 1.0),)))  # same network: keeps waiting
            r.set_request(RenderRequest(pkl=tiny_sg3_pkl, w0_seeds=((2, 1.0),)))
            res = _wait_result(r)  # while the slow load is still blocked
            assert res.error is None and res.net.pkl == tiny_sg3_pkl and res.stamp == r.last_stamp == 3
            assert not release[slow].is_set() and r.get_result() is None
            release[slow].set()
            r.set_request(RenderRequest(pkl=slow, w0_seeds=((2, 1.0),)))
            res_slow = _wait_result(r)
            assert res_slow.error is None and res_slow.net.pkl == slow and res_slow.stamp == 4
            np.testing.assert_array_equal(res_slow.image, res.image)  # same weights, same seed
            assert calls.count(slow) == 1  # the abandoned load was cached, not repeated

            r.set_request(RenderRequest(pkl=stuck))
            assert started[stuck].wait(TIMEOUT_SEC)
            thread = r._backend._thread
        assert not thread.is_alive()  # close() returned while the load was still blocked
    finally:
        for event in release.values():
            event.set()


def test_warm_spare_takes_over_after_a_crash(tiny_sg3_pkl, shm_prefixes):
    """Once the render process has answered, a spare process is kept warm (its network loaded); when the active one
    is killed, the spare renders the current request, and a new spare is prepared."""
    with AsyncRenderer('cpu', separate_process=True, shm_min_bytes=0) as r:
        r.set_request(RenderRequest(pkl=tiny_sg3_pkl, w0_seeds=((3, 1.0),)))
        first = _wait_result(r)
        shm_prefixes.append(r._backend._names.prefix)
        assert first.error is None and r._spare is not None and r._spare.is_alive()
        spare_pid, pid = r._spare.pid, r.pid
        shm_prefixes.append(r._spare._names.prefix)
        os.kill(pid, signal.SIGKILL)
        r._backend._proc.join(TIMEOUT_SEC)
        notice = _wait_result(r)
        assert 'died' in notice.error and r.pid == spare_pid and r.is_restarting
        again = _wait_result(r)
        assert again.error is None and not r.is_restarting and again.load_ms > 0  # the spare's load, reported once
        np.testing.assert_array_equal(again.image, first.image)
        assert r._spare is not None and r._spare.pid not in (pid, spare_pid)
        shm_prefixes.append(r._spare._names.prefix)
