"""visualizer.py command line and the import rules, without a display."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _run(args, env=None, timeout=60):
    return subprocess.run(
        [sys.executable, str(REPO / 'visualizer.py'), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
    )


def test_viz_cli_help():
    r = _run(['--help'])
    assert r.returncode == 0
    for opt in (
        '--capture-dir',
        '--browse-dir',
        '--device',
        '--trust',
        '--ui-scale',
        '--window',
        '--screenshot',
        '--in-process',
    ):
        assert opt in r.stdout


def test_viz_cli_no_display_is_a_clear_error():
    env = {k: v for k, v in os.environ.items() if k not in ('DISPLAY', 'WAYLAND_DISPLAY')}
    r = _run([], env=env)
    assert r.returncode != 0
    assert 'no display' in r.stderr and 'Traceback' not in r.stderr


def test_viz_cli_bad_window_option():
    r = _run(['--window', '12x'])
    assert r.returncode == 2 and '--window' in r.stderr and 'Traceback' not in r.stderr


def test_viz_parse_window_size():
    sys.path.insert(0, str(REPO))
    import importlib.util

    spec = importlib.util.spec_from_file_location('visualizer_cli', REPO / 'visualizer.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.parse_window_size('1600x1000') == (1600, 1000)
    assert mod.parse_window_size(' 800 X 600 ') == (800, 600)
    with pytest.raises(ValueError, match='WIDTHxHEIGHT'):
        mod.parse_window_size('big')


def test_viz_and_gui_utils_never_import_torch():
    code = (
        'import sys, importlib\n'
        'mods = ["gui_utils.fps", "gui_utils.gl_utils", "gui_utils.glfw_window", "gui_utils.imgui_window", '
        '"viz", "viz.visualizer", "viz.frame_view", "viz.script", "engine.protocol", "engine.async_renderer", "engine.sources"]\n'
        'for m in mods: importlib.import_module(m)\n'
        'bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))\n'
        'print("BAD" if bad else "OK", bad[:5])\n'
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('OK'), r.stdout
