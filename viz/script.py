"""Test hook: a JSON list of steps that drives the visualizer frame by frame (``visualizer.py --script FILE``).

Steps (one key each, executed in order; waiting steps hold the script for some frames):
    {"set": {"<widget key>": {<state>}}}   partial widget state, e.g. {"latent": {"x": 1.5}}
    {"load": "<path>" | null}              load a network (null = bundled default)
    {"trust": true}                        confirm the trust dialog for the refused pickle
    {"drop": ["<path>", ...]}              deliver files through the window's drop callback
    {"drag_image": [dx, dy]}               drag on the image by (dx, dy) pixels (moves the latent)
    {"wait_frames": N}
    {"wait_result": true, "timeout_sec": S}  until the latest request has been answered and displayed
    {"screenshot": "<png path>"}           whole window, read back at the end of this frame
    {"capture": "image" | "gui"}           the Capture widget's buttons
    {"load_w": "<path>"}, {"save_w": "<path>"}  the Latent pane's Load W / Save W (latent .npz/.npy files)
    {"save_session": "<path>"}, {"load_session": "<path>"}
    {"dump_state": "<json path>"}          request, errors, net, widget state (for assertions)
    {"resize": [w, h]}
    {"open": {"<widget key>": true | false}}  expand / collapse pane sections
    {"mouse": [x, y]} | {"mouse": [x, y, down]}  left-button mouse input through ImGui's event queue (a click:
                                           [x, y], then [x, y, true], then [x, y, false]); the next step runs
                                           after the frame in which the widgets handled the event
    {"kill_renderer": true}                SIGKILL the separate render process (crash-and-restart tests)
    {"lab": "<action>"}                    spectral / equivariance lab buttons: average, cancel, pin, clear_pins,
                                           measure, cancel_measure, export_npz, export_csv, export_png (exports go
                                           to the Spectral lab's export_dir)
    {"wait_jobs": true, "timeout_sec": S}  until no render-process job (average, measure, export) is running
    {"project": "<image path>" | {"path": "<image path>", "options": {<projection state>}}}  the Projection pane
    {"cancel_projection": true}            its Cancel button
    {"record": "start" | "stop" | "cancel"}  the Record pane's Start / Stop (stop starts the render job) / Cancel
    {"keyframes": <action>}                the Keyframes pane: "add", "play", "pause", "live", "save", "load", "render",
                                           {"select"|"delete"|"left"|"right"|"jump": i}, {"scrub": seconds},
                                           {"save"|"load": path}, {"duration": [i, s]}, {"interp": [i, "w"|"slerp_z"]}
    {"wait_file": "<path>"}                until the file exists (a test driving real input with xdotool says "done")
    {"scrub": N | "next" | "prev" | "play" | "pause" | "render"}  the Checkpoints pane: show snapshot N of the run
                                           (0 = oldest), Next / Prev, Play / Pause, Render video
    {"save_scrub": "<json path>"}          the Checkpoints pane's Save timeline
    {"wait_preload": true, "timeout_sec": S}  until the Checkpoints pane's neighbours are loaded ahead (or failed)
    {"quit": <exit code>}
The app exits with code 0 at the end of the script (1 if a wait timed out).
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import signal
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from viz.visualizer import Visualizer

logger = logging.getLogger(__name__)

STEP_KEYS = (
    'set',
    'load',
    'trust',
    'drop',
    'drag_image',
    'wait_frames',
    'wait_result',
    'screenshot',
    'capture',
    'load_w',
    'save_w',
    'save_session',
    'load_session',
    'dump_state',
    'resize',
    'open',
    'mouse',
    'kill_renderer',
    'lab',
    'wait_jobs',
    'project',
    'cancel_projection',
    'record',
    'keyframes',
    'wait_file',
    'scrub',
    'save_scrub',
    'wait_preload',
    'quit',
)

LAB_ACTIONS = ('average', 'cancel', 'pin', 'clear_pins', 'measure', 'cancel_measure', 'export_npz', 'export_csv',
               'export_png')  # fmt: skip


RECORD_ACTIONS = ('start', 'stop', 'cancel')


def load_script(path: str | pathlib.Path) -> list[dict[str, Any]]:
    """Reads and validates a script file.

    Raises:
        ValueError: not a JSON list of single-action steps with known keys.
    """
    try:
        steps = json.loads(pathlib.Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f'load_script(): path must be a readable JSON file, got {str(path)!r} ({e})') from e
    return validate_steps(steps)


def validate_steps(steps) -> list[dict[str, Any]]:
    if not isinstance(steps, list):
        raise ValueError(f'validate_steps(): the script must be a JSON list of steps, got {type(steps).__name__}')
    for i, s in enumerate(steps):
        keys = set(s) - {'timeout_sec'} if isinstance(s, dict) else None
        if not keys or len(keys) != 1 or not keys <= set(STEP_KEYS):
            raise ValueError(f'validate_steps(): step {i} must be an object with one of {STEP_KEYS}, got {s!r}')
        if 'record' in keys and s['record'] not in RECORD_ACTIONS:
            raise ValueError(f'validate_steps(): step {i}: record must be one of {RECORD_ACTIONS}, got {s["record"]!r}')
        if 'lab' in keys and s['lab'] not in LAB_ACTIONS:
            raise ValueError(f'validate_steps(): step {i}: lab action must be one of {LAB_ACTIONS}, got {s["lab"]!r}')
    return steps


class ScriptRunner:
    """Executes steps each frame until one has to wait; finishes by asking the app to quit."""

    def __init__(self, steps: list[dict[str, Any]], *, default_timeout_sec: float = 300.0) -> None:
        self.steps = validate_steps(list(steps))
        self.pos = 0
        self.default_timeout_sec = default_timeout_sec
        self.failed = False
        self._wait_frames: int | None = None
        self._wait_target: int | None = None
        self._wait_started: float | None = None
        self._hold_frames = 0

    @property
    def done(self) -> bool:
        return self.pos >= len(self.steps)

    def step(self, viz: Visualizer) -> None:
        if self._hold_frames > 0:
            self._hold_frames -= 1
            return
        while not self.done:
            s = self.steps[self.pos]
            if not self._run_step(viz, s):
                return
            self.pos += 1
            if 'screenshot' in s or s.get('capture') == 'gui':
                return  # read back at the end of this frame: later steps must not change what it shows
            if 'mouse' in s:
                # ImGui sees the event at the next frame's start and the widgets act on it while drawing that frame
                # (after the script ran): hold later steps until then, so e.g. a wait_result sees the click's load.
                self._hold_frames = 1
                return
        viz.quit(1 if self.failed else 0)

    def _run_step(self, viz: Visualizer, s: dict[str, Any]) -> bool:  # noqa: C901 -- a flat dispatch table
        """Runs one step; returns False while it is still waiting."""
        (key,) = set(s) - {'timeout_sec'}
        v = s[key]
        if key == 'wait_frames':
            if self._wait_frames is None:
                self._wait_frames = int(v)
            self._wait_frames -= 1
            if self._wait_frames >= 0:
                return False
            self._wait_frames = None
        elif key == 'wait_result':
            return self._wait_result(viz, float(s.get('timeout_sec', self.default_timeout_sec)))
        elif key == 'wait_file':
            return self._wait_file(str(v), float(s.get('timeout_sec', self.default_timeout_sec)))
        elif key == 'set':
            for wkey, state in v.items():
                viz.widget(wkey).set_state(state)
        elif key == 'load':
            viz.pickle.load(v)
        elif key == 'trust':
            viz.pickle.confirm_trust()
        elif key == 'drop':
            viz.window.simulate_drop([str(p) for p in v])
        elif key == 'drag_image':
            viz.latent.drag(float(v[0]), float(v[1]))
        elif key == 'screenshot':
            viz.request_screenshot(str(v))
        elif key == 'capture':
            if v == 'gui':
                viz.request_gui_capture()
            else:
                viz.capture.capture('image', viz.view.image, viz.view.fft)
        elif key == 'load_w':
            viz.latent.load_w(str(v))
        elif key == 'save_w':
            viz.latent.save_w(str(v))
        elif key == 'save_session':
            viz.session.save(str(v))
        elif key == 'load_session':
            viz.session.load(str(v))
        elif key == 'dump_state':
            pathlib.Path(v).parent.mkdir(parents=True, exist_ok=True)
            pathlib.Path(v).write_text(json.dumps(viz.debug_state(), indent=2, default=str) + '\n')
        elif key == 'resize':
            viz.window.set_window_size(int(v[0]), int(v[1]))
        elif key == 'open':
            for wkey, is_open in v.items():
                viz.set_section_open(wkey, bool(is_open))
        elif key == 'mouse':
            from imgui_bundle import imgui

            io = imgui.get_io()
            io.add_mouse_pos_event(float(v[0]), float(v[1]))
            if len(v) > 2:
                io.add_mouse_button_event(0, bool(v[2]))
        elif key == 'kill_renderer':
            pid = getattr(viz.renderer, 'pid', None)
            if pid is None:
                logger.warning('script: kill_renderer needs the separate render process; nothing to kill')
            else:
                os.kill(pid, signal.SIGKILL)
        elif key == 'lab':
            self._lab_action(viz, str(v))
        elif key == 'project':
            viz.projection.set_state(dict(v.get('options', {})) if isinstance(v, dict) else {})
            viz.projection.start(v['path'] if isinstance(v, dict) else str(v))
        elif key == 'cancel_projection':
            viz.projection.cancel('Cancelled by the script')
        elif key == 'record':
            {'start': viz.record.start, 'stop': viz.record.stop, 'cancel': viz.record.cancel}[str(v)]()
        elif key == 'keyframes':
            viz.keyframes.script_action(v)
        elif key == 'scrub':
            self._scrub(viz, v)
        elif key == 'save_scrub':
            viz.checkpoints.save_timeline(str(v))
        elif key == 'wait_preload':
            return self._wait_until(
                viz.checkpoints.preload_settled, float(s.get('timeout_sec', self.default_timeout_sec))
            )
        elif key == 'wait_jobs':
            return self._wait_jobs(viz, float(s.get('timeout_sec', self.default_timeout_sec)))
        elif key == 'quit':
            viz.quit(int(v))
            self.pos = len(self.steps)
            return False
        return True

    @staticmethod
    def _lab_action(viz: Visualizer, action: str) -> None:
        lab, eq = viz.spectrum_lab, viz.equivariance
        paths = lab.export_paths()
        actions = {
            'average': lab.start_average,
            'cancel': lab.cancel_job,
            'pin': lab.pin,
            'clear_pins': lambda: setattr(lab, 'pins', []),
            'measure': eq.start_measure,
            'cancel_measure': eq.cancel_measure,
            'export_npz': lambda: lab.start_export_npz(paths['npz']),
            'export_csv': lambda: lab.export_csv(paths['csv']),
            'export_png': lambda: lab.export_png(paths['png']),
        }
        if action not in actions:
            raise ValueError(f'script: lab action must be one of {LAB_ACTIONS}, got {action!r}')
        actions[action]()

    @staticmethod
    def _scrub(viz: Visualizer, v: Any) -> None:
        pane = viz.checkpoints
        if v in ('next', 'prev'):
            pane.step(1 if v == 'next' else -1)
        elif v in ('play', 'pause'):
            pane.play(v == 'play')
        elif v == 'render':
            pane.render_video()
        else:
            pane.go_to(v)

    def _wait_jobs(self, viz: Visualizer, timeout_sec: float) -> bool:
        now = time.perf_counter()
        if self._wait_started is None:
            self._wait_started = now
            return False
        if not viz.jobs_running():
            self._wait_started = None
            return True
        if now - self._wait_started > timeout_sec:
            logger.error('script: jobs still running after %.0f s', timeout_sec)
            self.failed = True
            self._wait_started = None
            return True
        return False

    def _wait_until(self, done, timeout_sec: float) -> bool:
        """Waits (at least one frame) until ``done()``; a timeout fails the script."""
        now = time.perf_counter()
        if self._wait_started is None:
            self._wait_started = now
            return False
        if done():
            self._wait_started = None
            return True
        if now - self._wait_started > timeout_sec:
            logger.error('script: still waiting after %.0f s', timeout_sec)
            self.failed = True
            self._wait_started = None
            return True
        return False

    def _wait_file(self, path: str, timeout_sec: float) -> bool:
        now = time.perf_counter()
        if self._wait_started is None:
            self._wait_started = now
        if os.path.exists(path):
            self._wait_started = None
            return True
        if now - self._wait_started > timeout_sec:
            logger.error('script: %s did not appear within %.0f s', path, timeout_sec)
            self.failed = True
            self._wait_started = None
            return True
        return False

    def _wait_result(self, viz: Visualizer, timeout_sec: float) -> bool:
        now = time.perf_counter()
        if self._wait_started is None:
            self._wait_started = now  # the request of this frame is submitted after the script runs
            return False
        # The newest request counts (a failed load reverts to the previous network: wait for that one too).
        self._wait_target = viz.submitted_stamp
        if viz.displayed_stamp >= self._wait_target and not viz.pickle.is_loading() and not viz.is_restarting():
            self._wait_started = self._wait_target = None
            return True
        if now - self._wait_started > timeout_sec:
            logger.error('script: no result within %.0f s', timeout_sec)
            self.failed = True
            self._wait_started = self._wait_target = None
            return True
        return False
