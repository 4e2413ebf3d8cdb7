"""GUI tier of remote rendering: ``visualizer.py --connect`` with ``import torch`` blocked, against a real
``python -m engine.serve`` process on 127.0.0.1 (every pane's request must reach the server)."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.engine.remote_helpers import BLOCK_TORCH, start_server_process

pytestmark = [pytest.mark.gui, pytest.mark.slow]

REPO = pathlib.Path(__file__).resolve().parents[2]


def run_blocked_visualizer(env: dict, args: list[str], script: list, tmp_path: pathlib.Path, timeout: float):
    """``visualizer.py ARGS --script`` in a subprocess whose ``import torch`` raises ImportError."""
    script_path = tmp_path / 'script.json'
    script_path.write_text(json.dumps(script))
    argv = [str(REPO / 'visualizer.py'), *args, '--script', str(script_path)]
    code = BLOCK_TORCH + (
        f'import runpy\nsys.argv = {argv!r}\nrunpy.run_path({str(REPO / "visualizer.py")!r}, run_name="__main__")\n'
    )
    return subprocess.run(
        [sys.executable, '-c', code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout
    )


def test_viz_remote_every_pane_reaches_the_server_without_torch(gui_env, tmp_path):
    if not (REPO / 'models' / 'default.pkl').exists():
        pytest.skip('models/default.pkl (bundled default network) is missing')
    log = tmp_path / 'requests.jsonl'
    root = tmp_path / 'root'
    (root / 'run1').mkdir(parents=True)
    shutil.copy(REPO / 'models' / 'default.pkl', root / 'run1' / 'network-snapshot-000001.pkl')
    (tmp_path / 'outside.pkl').write_bytes(b'not under the root')
    proc, address, token = start_server_process(tmp_path, '--request-log', str(log), '--root', str(root))
    shot, state = tmp_path / 'remote.png', tmp_path / 'state.json'
    wait = {'wait_result': True, 'timeout_sec': 240}
    script = [
        wait,
        {'set': {'latent': {'x': 3.0}}},
        wait,
        {'set': {'stylemix': {'seed': 5.0, 'enabled': [True, True, False]}}},
        wait,
        {'set': {'trunc_noise': {'psi': 0.6}}},
        wait,
        {'set': {'equivariance': {'xlate_x': 0.125, 'rotate': 0.05}}},
        wait,
        {'set': {'layers': {'fft_show': True, 'img_scale_db': 3.0}}},
        wait,
        {'set': {'performance': {'frame_codec': 'jpeg', 'frame_quality': 70, 'force_fp32': True, 'device': 'cpu'}}},
        {'open': {'performance': True}},
        wait,
        {'capture': 'image'},
        {'wait_frames': 3},
        {'screenshot': str(shot)},
        {'dump_state': str(state)},
        {'open': {'pickle': False, 'latent': False, 'stylemix': False, 'trunc_noise': False, 'layers': False}},
        {'wait_frames': 3},
        {'screenshot': str(tmp_path / 'remote-performance.png')},  # The link section of the Performance pane.
        {'load': 'run1'},  # Network pane: a run directory under the server's root (its newest snapshot).
        wait,
        {'dump_state': str(tmp_path / 'state-run1.json')},
        {'load': '../outside.pkl'},  # Outside the root: refused by the server, the previous network stays.
        wait,
        {'dump_state': str(tmp_path / 'state-outside.json')},
    ]
    try:
        token_file = tmp_path / 'token'
        r = run_blocked_visualizer(
            gui_env,
            ['--connect', address, '--token-file', str(token_file), '--window', '1024x640', '--capture-dir', 'caps'],
            script,
            tmp_path,
            timeout=900,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert r.returncode == 0, f'exit {r.returncode}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-4000:]}'
    assert token != '' and 'blocked' not in r.stderr
    reqs = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(any(s == 3 for s, _ in q['w0_seeds']) for q in reqs), 'latent pane'
    assert any(q['stylemix_seed'] == 5 and q['stylemix_idx'] == [0, 1] for q in reqs), 'stylemix pane'
    assert any(q['trunc_psi'] == pytest.approx(0.6) for q in reqs), 'truncation pane'
    assert any(q['input_transform'] and q['input_transform'][0][2] != 0 for q in reqs), 'equivariance pane'
    assert any(q['fft_show'] and q['img_scale_db'] == 3.0 for q in reqs), 'layers pane'
    assert any(q['force_fp32'] and q['device'] == 'cpu' for q in reqs), 'performance pane'
    assert any(q['pkl'] == 'run1' for q in reqs), 'network pane'
    st_run = json.loads((tmp_path / 'state-run1.json').read_text())
    assert st_run['error_text'] is None and st_run['widgets']['pickle']['pkl'] == 'run1'
    st_out = json.loads((tmp_path / 'state-outside.json').read_text())
    assert 'outside the server root' in st_out['error_text'] and st_out['widgets']['pickle']['pkl'] == 'run1'
    st = json.loads(state.read_text())
    assert st['error_text'] is None and st['image_shape'] and st['fft_shape']
    assert st['widgets']['performance']['frame_codec'] == 'jpeg'
    assert st['captures'] and (tmp_path / st['captures'][0]).exists()
    from PIL import Image

    img = np.asarray(Image.open(shot).convert('RGB')).astype(np.float64)
    assert img[40:600, 480:1000].std() > 5.0  # The frame is on screen, not an empty background.


def test_viz_remote_server_restart_shows_disconnected_and_resends_the_state(gui_env, tmp_path):
    """Server killed while the GUI runs: the GUI says "disconnected, retrying", reconnects to the restarted server
    (same token via --reuse-token) and sends its state again. A stand-in renderer keeps it fast."""
    log_a, log_b = tmp_path / 'a.jsonl', tmp_path / 'b.jsonl'
    renderer = ['--renderer', 'bench.bench_remote:FrameRenderer', '--reuse-token']
    proc_a, address, _token = start_server_process(tmp_path, *renderer, '--request-log', str(log_a))
    port = address.rsplit(':', 1)[1]
    state = tmp_path / 'state.json'
    script = [
        {'wait_result': True, 'timeout_sec': 120},
        {'wait_frames': 240},  # Meanwhile the test kills the server and starts another one.
        {'set': {'latent': {'x': 7.0}}},
        {'wait_result': True, 'timeout_sec': 120},
        {'dump_state': str(state)},
    ]
    args = ['--connect', address, '--token-file', str(tmp_path / 'token'), '--window', '800x600', '--fps-limit', '60']
    script_path = tmp_path / 'script.json'
    script_path.write_text(json.dumps(script))
    code = BLOCK_TORCH + (
        'import runpy\n'
        f'sys.argv = {[str(REPO / "visualizer.py"), *args, "--script", str(script_path)]!r}\n'
        f'runpy.run_path({str(REPO / "visualizer.py")!r}, run_name="__main__")\n'
    )
    gui = subprocess.Popen(
        [sys.executable, '-c', code],
        env=gui_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc_b = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (log_a.exists() and log_a.read_text().strip()):
            time.sleep(0.05)
        assert log_a.exists(), 'the GUI never reached the first server'
        time.sleep(0.5)
        proc_a.kill()
        proc_a.wait(timeout=30)
        time.sleep(1.5)  # The GUI notices and retries.
        proc_b, address_b, _ = start_server_process(tmp_path, *renderer, '--request-log', str(log_b), port=port)
        assert address_b == address
        out, err = gui.communicate(timeout=300)
    finally:
        for p in (gui, proc_a, proc_b):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=30)
    assert gui.returncode == 0, f'exit {gui.returncode}\nstderr:\n{err[-4000:]}'
    assert 'disconnected, retrying' in err
    reqs_b = [json.loads(line) for line in log_b.read_text().splitlines()]
    assert reqs_b and any(any(s == 7 for s, _ in q['w0_seeds']) for q in reqs_b)
    st = json.loads(state.read_text())
    assert st['error_text'] is None and st['image_shape'] == [256, 256, 3]
