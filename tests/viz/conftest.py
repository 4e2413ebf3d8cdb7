"""GUI-tier fixtures: a private Xvfb display for the session and helpers to run the visualizer in a subprocess."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
GOLDEN_DIR = REPO / 'tests' / 'golden' / 'gui'
ACTUAL_DIR = REPO / 'tests' / 'golden' / 'actual'


def _free_display() -> int:
    for n in range(90, 200):
        if not os.path.exists(f'/tmp/.X11-unix/X{n}') and not os.path.exists(f'/tmp/.X{n}-lock'):
            return n
    raise RuntimeError('no free X display number in 90..199')


@pytest.fixture(scope='session')
def xvfb_display():
    """Starts ``Xvfb :N -screen 0 1280x1024x24`` on a free display; yields ':N'. Skips when Xvfb is missing."""
    exe = shutil.which('Xvfb')
    if exe is None:
        pytest.skip('Xvfb is not installed (apt-get install xvfb, or run scripts/ensure_xvfb.sh)')
    for _attempt in range(3):
        n = _free_display()
        proc = subprocess.Popen(
            [exe, f':{n}', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None and not os.path.exists(f'/tmp/.X11-unix/X{n}'):
            time.sleep(0.05)
        if proc.poll() is None and os.path.exists(f'/tmp/.X11-unix/X{n}'):
            break
        proc.kill()
        proc.wait()
    else:
        pytest.skip('Xvfb did not start')
    try:
        yield f':{n}'
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope='session')
def gui_env(xvfb_display) -> dict[str, str]:
    """Environment for visualizer subprocesses: DISPLAY set, PYOPENGL_PLATFORM left to GLX."""
    env = dict(os.environ)
    env['DISPLAY'] = xvfb_display
    env.pop('WAYLAND_DISPLAY', None)
    if env.get('PYOPENGL_PLATFORM') not in (None, 'glx'):
        env.pop('PYOPENGL_PLATFORM')
    env['PYTHONPATH'] = str(REPO) + os.pathsep + env.get('PYTHONPATH', '')
    return env


FAKE_FLAG = '--fake-renderer'  # Test-only: run tests/viz/fake_visualizer.py (numpy stand-in renderer) instead.


def run_visualizer(env: dict, args: list[str], script: list | None, tmp_path: pathlib.Path, *, timeout: float = 120):
    """Runs ``visualizer.py`` with ``args`` (+ ``--script``); returns the CompletedProcess. With ``--fake-renderer``
    among the args it runs ``tests/viz/fake_visualizer.py`` (the same CLI with the numpy stand-in renderer)."""
    entry = REPO / 'visualizer.py'
    if FAKE_FLAG in args:
        args = [a for a in args if a != FAKE_FLAG]
        entry = REPO / 'tests' / 'viz' / 'fake_visualizer.py'
    cmd = [sys.executable, str(entry), *args]
    if script is not None:
        p = tmp_path / 'script.json'
        p.write_text(json.dumps(script))
        cmd += ['--script', str(p)]
    return subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def load_png(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert('RGB'))


def compare_golden(actual_png: pathlib.Path, name: str, *, max_rms: float = 3.0) -> float:
    """RMS (0..255 scale) between a screenshot and ``tests/golden/gui/<name>.png``; writes actual + diff PNGs
    under tests/golden/actual/ on failure. ``SG3VIZ_UPDATE_GOLDENS=1`` (re)writes the golden instead."""
    from PIL import Image

    golden = GOLDEN_DIR / f'{name}.png'
    actual = load_png(actual_png)
    if os.environ.get('SG3VIZ_UPDATE_GOLDENS') == '1' or not golden.exists():
        if os.environ.get('SG3VIZ_UPDATE_GOLDENS') != '1':
            pytest.fail(f'golden {golden} is missing; run with SG3VIZ_UPDATE_GOLDENS=1 to create it')
        GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
        Image.fromarray(actual).save(golden)
        return 0.0
    expected = load_png(golden)
    if expected.shape != actual.shape:
        rms = float('inf')
    else:
        rms = float(np.sqrt(np.mean((actual.astype(np.float64) - expected.astype(np.float64)) ** 2)))
    if rms > max_rms:
        ACTUAL_DIR.mkdir(parents=True, exist_ok=True)
        Image.fromarray(actual).save(ACTUAL_DIR / f'{name}.png')
        if expected.shape == actual.shape:
            diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16)).clip(0, 255).astype(np.uint8)
            Image.fromarray((diff.astype(np.float32) * 4).clip(0, 255).astype(np.uint8)).save(
                ACTUAL_DIR / f'{name}-diff.png'
            )
        pytest.fail(
            f'{name}: RMS {rms:.2f} > {max_rms} against {golden}; see {ACTUAL_DIR}/{name}.png and '
            f'{name}-diff.png (SG3VIZ_UPDATE_GOLDENS=1 to accept)'
        )
    return rms


@pytest.fixture
def run_viz(gui_env, tmp_path):
    """``run_viz(args, script=None, timeout=120)`` -> CompletedProcess of visualizer.py under the Xvfb display."""

    def _run(args, script=None, timeout: float = 120):
        return run_visualizer(gui_env, list(args), script, tmp_path, timeout=timeout)

    return _run


@pytest.fixture
def golden():
    """``golden(png_path, name, max_rms=3.0)`` -> RMS against tests/golden/gui/<name>.png (fails above max)."""
    return compare_golden


@pytest.fixture
def png():
    """``png(path)`` -> uint8 [H, W, 3]."""
    return load_png


class LiveVisualizer:
    """A visualizer subprocess under the test's Xvfb, driven with real X input (``xdotool``) while its script waits.

    The script should dump its state to a file the test waits for (``wait_for``), then ``{"wait_file": go}`` until
    the test calls :meth:`go` after its input; the app then finishes its script and exits.
    """

    def __init__(self, env: dict, args: list[str], script: list, tmp_path: pathlib.Path):
        self.env = env
        self.tmp_path = tmp_path
        self.go_file = tmp_path / 'go'
        entry = REPO / 'visualizer.py'
        if FAKE_FLAG in args:
            args = [a for a in args if a != FAKE_FLAG]
            entry = REPO / 'tests' / 'viz' / 'fake_visualizer.py'
        p = tmp_path / 'live_script.json'
        p.write_text(json.dumps(script))
        self.proc = subprocess.Popen(
            [sys.executable, str(entry), *args, '--script', str(p)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.window_id: str | None = None

    def wait_for(self, path: pathlib.Path, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out, err = self.proc.communicate(timeout=10) if self.proc.poll() is not None else ('', '')
                pytest.fail(f'the visualizer did not write {path.name} (exit {self.proc.poll()}):\n{err[-3000:]}')
            time.sleep(0.05)
        time.sleep(0.1)  # the JSON is written in one call, but give the file system a moment

    def xdo(self, *args: str) -> str:
        """Runs ``xdotool ARGS`` on the test display (``WINDOW`` in args is replaced by the app's window id)."""
        if self.window_id is None:
            found = subprocess.run(
                ['xdotool', 'search', '--name', 'StyleGAN3 visualizer'],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=30,
            )
            ids = found.stdout.split()
            assert ids, f'xdotool found no visualizer window: {found.stderr}'
            self.window_id = ids[-1]
        argv = ['xdotool', *[self.window_id if a == 'WINDOW' else a for a in args]]
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f'{argv}: {r.stderr}'
        return r.stdout

    def move(self, x: float, y: float) -> None:
        self.xdo('mousemove', '--window', 'WINDOW', str(int(x)), str(int(y)))
        time.sleep(0.25)

    def click(self, x: float, y: float, *, modifiers: str | None = None) -> None:
        self.move(x, y)
        if modifiers:
            self.xdo('keydown', modifiers)
        self.xdo('mousedown', '1')
        time.sleep(0.15)
        self.xdo('mouseup', '1')
        if modifiers:
            self.xdo('keyup', modifiers)
        time.sleep(0.2)

    def drag(self, x0: float, y0: float, x1: float, y1: float, steps: int = 10) -> None:
        self.move(x0, y0)
        self.xdo('mousedown', '1')
        time.sleep(0.15)
        for i in range(1, steps + 1):
            self.move(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps)
        self.xdo('mouseup', '1')
        time.sleep(0.2)

    def type(self, text: str) -> None:
        self.xdo('type', '--delay', '60', '--', text)
        time.sleep(0.2)

    def key(self, *keys: str) -> None:
        self.xdo('key', '--delay', '60', *keys)
        time.sleep(0.2)

    def go(self) -> None:
        self.go_file.write_text('go')

    def finish(self, timeout: float = 120) -> subprocess.CompletedProcess:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def live_viz(gui_env, tmp_path):
    """``live_viz(args, script)`` -> :class:`LiveVisualizer` (killed at the end of the test). Skips without xdotool."""
    if shutil.which('xdotool') is None:
        pytest.skip('xdotool is not installed (apt-get install xdotool, or run scripts/ensure_xvfb.sh)')
    started: list[LiveVisualizer] = []

    def _start(args, script):
        v = LiveVisualizer(gui_env, list(args), script, tmp_path)
        started.append(v)
        return v

    yield _start
    for v in started:
        v.close()
