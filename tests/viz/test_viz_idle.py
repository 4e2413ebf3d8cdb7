"""Idle window (issue 12): with nothing to do the frame loop waits for events and draws nothing; real input (xdotool
mouse motion) or an animation wakes it at once. Counts frames, never times them (benchmark: bench/bench_visualizer.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

_CHILD = textwrap.dedent(
    """
    import json, subprocess, sys, time
    import glfw
    from tests.viz.fake_visualizer import fake_renderer_factory
    from viz.visualizer import Visualizer

    app = Visualizer(window_size=(640, 480), separate_process=False, renderer_factory=fake_renderer_factory)
    out = {}
    try:
        gate = app.window.idle
        gate.grace_sec, gate.max_wait_sec = 0.2, 0.05
        deadline = time.monotonic() + 60
        while app.view.image is None and time.monotonic() < deadline:  # first image
            app.frame()
        out['got_image'] = app.view.image is not None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:  # past the grace period
            app.frame()
        drawn = app.window.frames_drawn
        for _ in range(20):  # idle: each call waits for events (or 50 ms) and draws nothing
            app.frame()
        out['idle_drawn'] = app.window.frames_drawn - drawn
        # A render-process job's progress (e.g. a preload) redraws the idle window without input: 40 steps of 50 ms,
        # progress at most every 0.1 s. Started, then past the grace period, then counted.
        job_id = app.start_job('sleep', {'num': 40, 'step_sec': 0.05})
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.3:
            app.frame()
        drawn = app.window.frames_drawn
        for _ in range(20):
            app.frame()
        out['job_id'] = job_id
        out['job_drawn'] = app.window.frames_drawn - drawn
        while app.renderer.job_updates() or time.monotonic() - t0 < 2.5:  # let it finish, drain its updates
            time.sleep(0.05)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.5:
            app.frame()
        # Real input: move the pointer over the window; the next frame must be drawn.
        x, y = glfw.get_window_pos(app.window.handle)
        drawn = app.window.frames_drawn
        subprocess.run(['xdotool', 'mousemove', str(x + 300), str(y + 200)], check=True, timeout=10)
        subprocess.run(['xdotool', 'mousemove', str(x + 310), str(y + 210)], check=True, timeout=10)
        for _ in range(10):
            app.frame()
        out['input_drawn'] = app.window.frames_drawn - drawn
        # An animation switched on from outside the frame loop keeps frames coming without input.
        app.latent.set_state({'anim': True, 'speed': 0.5})
        drawn = app.window.frames_drawn
        for _ in range(10):
            app.frame()
        out['anim_drawn'] = app.window.frames_drawn - drawn
    finally:
        app.close()
    print('RESULT ' + json.dumps(out))
    """
)


def test_viz_idle_waits_and_wakes_on_input(gui_env, tmp_path):
    if shutil.which('xdotool') is None:
        pytest.skip('xdotool is not installed (apt-get install -y xdotool, or run scripts/ensure_xvfb.sh)')
    proc = subprocess.run(
        [sys.executable, '-c', _CHILD], env=gui_env, cwd=tmp_path, capture_output=True, text=True, timeout=180
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    r = json.loads(lines[-1][len('RESULT ') :])
    assert r['got_image']
    assert r['idle_drawn'] == 0, r  # no input, no animation, nothing pending: nothing drawn
    assert r['job_id'] is not None and r['job_drawn'] >= 2, r  # job progress arrives and is drawn without input
    assert r['input_drawn'] >= 1, r  # mouse motion wakes the loop and draws (then the grace period runs)
    assert r['anim_drawn'] == 10, r  # an animation never idles
