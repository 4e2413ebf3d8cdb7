"""The visualizer app: owns the window, the frame loop, the control pane and the request bookkeeping (the stamp of
every request sent, the frame view of the results). The widgets are one per file (``viz/*_widget.py``); the image,
spectrum and overlays are ``viz.image_area``.

Each frame: poll the renderer for a new RenderResult and fold it into the frame view (``viz.frame_view``) that the
widgets read, draw the pane, collect the widgets' parts of the next RenderRequest and hand it to the renderer
(which filters unchanged requests and returns the request's stamp), draw the image and overlays. The renderer runs
behind ``engine.async_renderer.AsyncRenderer`` (a separate process by default); this module never imports torch.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from imgui_bundle import imgui

from engine.protocol import RenderRequest, RenderResult, clamp_request
from engine.sources import display_name
from gui_utils.imgui_window import ImguiWindow
from viz.capture_widget import CaptureWidget
from viz.checkpoint_widget import CheckpointWidget
from viz.equivariance_widget import EquivarianceWidget
from viz.frame_view import FrameView
from viz.image_area import ImageArea
from viz.keyframe_widget import KeyframeWidget
from viz.latent_widget import LatentWidget
from viz.layer_widget import LayerWidget
from viz.performance_widget import PerformanceWidget
from viz.pickle_widget import PickleWidget
from viz.projection_widget import ProjectionWidget, is_image_path
from viz.record_widget import RecordWidget
from viz.script import ScriptRunner
from viz.session_widget import SessionWidget
from viz.spectrum_lab_widget import SpectrumLabWidget
from viz.stylemix_widget import StylemixWidget
from viz.trunc_noise_widget import TruncNoiseWidget
from viz.widget import Widget

logger = logging.getLogger(__name__)

PANE_WIDTH_FONTS = 31  # control pane width in font sizes


def default_renderer_factory(device: str, separate_process: bool):
    """The real renderer (imported lazily: it is the one place that talks to torch, in its own process)."""
    from engine.async_renderer import AsyncRenderer

    return AsyncRenderer(device=device, separate_process=separate_process)


class Visualizer:
    """The application. ``run()`` loops until the window closes or a script / screenshot finishes.

    Args:
        pkls: network sources; the first one opens at start (none: the bundled default), all go to Recent.
        capture_dir: where Capture writes PNGs + JSON sidecars.
        browse_dir: directory listed by the Browse button (training runs), or None.
        device: renderer device 'auto' | 'cpu' | 'cuda' | 'mps' (| 'cuda:N').
        trust: load every pickle with trust=True (runs embedded code).
        ui_scale: user UI scale (times the monitor's content scale).
        window_size: (width, height) in screen coordinates.
        separate_process: render in a separate process.
        script: steps for :class:`viz.script.ScriptRunner` (test hook), or None.
        renderer_factory: ``(device, separate_process) -> AsyncRenderer``-like object.
        fps_limit: frames per second cap of the GUI loop.
        vsync: start with vertical sync.

    Raises:
        gui_utils.glfw_window.DisplayError: no display / OpenGL 3.3 context.
    """

    def __init__(
        self,
        *,
        pkls: Sequence[str] = (),
        capture_dir: str = 'captures',
        browse_dir: str | None = None,
        device: str = 'auto',
        trust: bool = False,
        ui_scale: float = 1.0,
        window_size: tuple[int, int] = (1600, 1000),
        separate_process: bool = True,
        script: list[dict[str, Any]] | None = None,
        renderer_factory: Callable[[str, bool], Any] = default_renderer_factory,
        fps_limit: int = 60,
        vsync: bool = False,
    ) -> None:
        self.window: ImguiWindow | None = None
        self.renderer = None
        self.window = ImguiWindow(
            title='StyleGAN3 visualizer',
            window_width=window_size[0],
            window_height=window_size[1],
            ui_scale=ui_scale,
            vsync=vsync,
            fps_limit=fps_limit,
        )
        if script is not None:
            self.window.fixed_dt = 1.0 / fps_limit  # deterministic fades / animations in scripted runs
        try:
            self.renderer = renderer_factory(device, separate_process)
        except BaseException:
            self.window.close()
            raise
        # Widgets (pane order).
        self.pickle = PickleWidget(self, browse_dir=browse_dir, trust_all=trust)
        self.latent = LatentWidget(self)
        self.stylemix = StylemixWidget(self)
        self.trunc_noise = TruncNoiseWidget(self)
        self.equivariance = EquivarianceWidget(self)
        self.layers = LayerWidget(self)
        self.spectrum_lab = SpectrumLabWidget(self)
        self.projection = ProjectionWidget(self)
        self.keyframes = KeyframeWidget(self)
        self.checkpoints = CheckpointWidget(self)
        self.capture = CaptureWidget(self, capture_dir=capture_dir)
        self.record = RecordWidget(self)
        self.performance = PerformanceWidget(self)
        self.session = SessionWidget(self, session_path=str(pathlib.Path(capture_dir) / 'session.json'))
        self.performance.set_state(
            {'device': device, 'separate_process': separate_process, 'fps_limit': fps_limit, 'vsync': vsync}
        )
        self.performance.mark_applied(self.performance.pending_changes())
        self.widgets: list[Widget] = [
            self.pickle,
            self.latent,
            self.stylemix,
            self.trunc_noise,
            self.equivariance,
            self.layers,
            self.spectrum_lab,
            self.projection,
            self.keyframes,
            self.checkpoints,
            self.capture,
            self.record,
            self.performance,
            self.session,
        ]
        # Render bookkeeping: the stamps come from the renderer (set_request returns them).
        self.view = FrameView()
        self.submitted_stamp = 0
        self._last_request: RenderRequest | None = None
        self._requests: collections.OrderedDict[int, RenderRequest] = collections.OrderedDict()
        self.image_area = ImageArea(self, PANE_WIDTH_FONTS)
        self._screenshots: list[str] = []
        self._crop_screenshots: list[tuple[str, tuple[float, float, float, float]]] = []
        self._gui_capture = False
        self._last_logged_error: str | None = None
        self._quit_code: int | None = None
        self._section_open: dict[str, bool] = {}
        self.notes: collections.deque[tuple[float, str]] = collections.deque(maxlen=20)  # (time.monotonic(), text)
        self.script = ScriptRunner(script) if script is not None else None
        self.pickle.recent = list(dict.fromkeys(pkls))
        self.pickle.load(pkls[0] if pkls else None)

    # ---- small API used by widgets and scripts ----------------------------------------------------------------
    @property
    def font_size(self) -> float:
        return self.window.font_size if self.window is not None else 14.0

    def widget(self, key: str) -> Widget:
        """The widget with ``KEY == key``.

        Raises:
            KeyError: unknown key (lists the valid ones).
        """
        for w in self.widgets:
            if w.KEY == key:
                return w
        raise KeyError(f'Visualizer.widget(): key must be one of {[w.KEY for w in self.widgets]}, got {key!r}')

    @property
    def net(self):
        """NetInfo of the network on screen (``view.net``), or None."""
        return self.view.net

    @property
    def displayed_stamp(self) -> int:
        """Stamp of the newest result received (-1 before the first)."""
        return self.view.displayed_stamp

    def request_screenshot(self, path: str) -> None:
        self._screenshots.append(path)

    def request_crop_screenshot(self, path: str, rect: tuple[float, float, float, float]) -> None:
        """Saves the part (x, y, w, h in screen coordinates) of this frame's window to a PNG (e.g. the radial plot)."""
        self._crop_screenshots.append((path, rect))

    def start_job(self, kind: str, params: dict) -> int | None:
        """Starts a render-process job (``engine.jobs``) on the current request; None when the renderer has no
        jobs. Updates arrive through ``Widget.on_job_update``."""
        start = getattr(self.renderer, 'start_job', None)
        if start is None:
            return None
        return int(start(kind, params, self._last_request))

    def cancel_job(self, job_id: int) -> None:
        cancel = getattr(self.renderer, 'cancel_job', None)
        if cancel is not None:
            cancel(job_id)

    def jobs_running(self) -> bool:
        """Whether a widget waits for a job (the script hook's ``wait_jobs``)."""
        return any(getattr(w, 'job_id', None) is not None for w in self.widgets)

    def request_gui_capture(self) -> None:
        self._gui_capture = True

    def set_section_open(self, key: str, is_open: bool) -> None:
        """Expands / collapses a widget's pane section on the next frame.

        Raises:
            KeyError: unknown widget key.
        """
        self.widget(key)  # validates the key
        self._section_open[key] = bool(is_open)

    def notify(self, text: str) -> None:
        """Shows a short note over the bottom of the image for ``NOTE_SEC`` (5) seconds (e.g. a clamped value)."""
        if not self.notes or self.notes[-1][1] != text:
            logger.info('%s', text)
        self.notes.append((time.monotonic(), str(text)))

    def quit(self, code: int = 0) -> None:
        self._quit_code = int(code)

    def handle_drop(self, paths: list[str]) -> None:
        """Dropped files: a capture (a PNG carrying our state chunk, or its .json sidecar), a saved session or a
        recording (its .mp4 or timeline .json: the first recorded state) restores that state (``engine.states``); a
        keyframe timeline .json loads into the Keyframes pane (its first keyframe shown); W / W+ latents (.npz, .npy)
        go to the Latent pane; other images start a projection (the Projection pane opens); everything else goes to
        the Network pane (pickles, URLs, run directories)."""
        from engine.states import CAPTURE_FORMAT, SESSION_FORMAT, png_state

        for p in paths:
            if self.keyframes.is_keyframe_file(p):  # a keyframe timeline: into the Keyframes pane
                self.set_section_open(self.keyframes.KEY, True)
                if not self.keyframes.load_dropped(p):
                    self.pickle.load_error = self.keyframes.status
                return
            low = str(p).lower()
            doc = png_state(p) if low.endswith('.png') else None
            if doc is not None or low.endswith(('.json', '.mp4', '.mov', '.m4v')):
                if doc is not None and doc.get('format') not in (CAPTURE_FORMAT, SESSION_FORMAT):
                    continue
                self.session.load(p)
                if self.session.status.startswith('Loaded'):
                    self.pickle.dismiss_error()
                else:
                    self.pickle.load_error = self.session.status
                return
        latent_files = [p for p in paths if str(p).lower().endswith(('.npz', '.npy'))]
        if latent_files:
            self.latent.load_w(latent_files[0])
        images = [p for p in paths if is_image_path(p)]
        if images:
            self.set_section_open(self.projection.KEY, True)
            self.projection.start(images[-1])
        others = [p for p in paths if p not in latent_files and p not in images]
        if others:
            self.pickle.handle_drop(others)

    def get_session(self) -> dict:
        return {'widgets': {w.KEY: w.get_state() for w in self.widgets if w.STATE_KEYS}}

    def set_session(self, doc: dict) -> None:
        for key, state in (doc.get('widgets') or {}).items():
            try:
                self.widget(key).set_state(state)
            except KeyError:
                logger.warning('session: ignoring unknown widget %r', key)

    def error_text(self) -> str | None:
        """What the error overlay shows: a failed load (until dismissed, another load, or its source loading after
        all) or the newest result's error."""
        return self.pickle.load_error or self.view.error

    def is_restarting(self) -> bool:
        """Whether the render process died and its replacement has not answered yet."""
        return bool(getattr(self.renderer, 'is_restarting', False))

    def debug_state(self) -> dict:
        """Snapshot for tests / bug reports."""
        return {
            'submitted_stamp': self.submitted_stamp,
            'displayed_stamp': self.displayed_stamp,
            'request': self._last_request.to_dict() if self._last_request else None,
            'displayed_request': self.view.image_request.to_dict() if self.view.image_request else None,
            'error_text': self.error_text(),
            'render_error': self.view.error,
            'restarting': self.is_restarting(),
            'notes': [text for _, text in self.notes],
            'status': self.pickle.status_text(),
            'pane_width': self.font_size * PANE_WIDTH_FONTS,
            'field_widths': {
                'pkl': self.pickle.field_width,
                'capture_dir': self.capture.field_width,
                'session_path': self.session.field_width,
            },
            'load_error': self.pickle.load_error,
            'refused': list(self.pickle.refused[1]) if self.pickle.refused else [],
            'loading': self.pickle.is_loading(),
            'net': dataclasses.asdict(self.net) if self.net is not None else None,
            'image_shape': list(self.view.image.shape) if self.view.image is not None else None,
            'fft_shape': list(self.view.fft.shape) if self.view.fft is not None else None,
            'image_rect': [float(v) for v in self.image_area.image_rect],
            'layers': [info.name for info in self.view.layers],
            'captures': self.capture.last_paths,
            'widgets': self.get_session()['widgets'],
            'font_size': self.font_size,
            'window_size': list(self.window.window_size) if self.window else None,
            'renderer_pid': getattr(self.renderer, 'pid', None),
            **self._lab_state(),
        }

    def _lab_state(self) -> dict:
        """The lab's numbers for tests: ``eq_psnr_db`` (None when there is no readout) and ``radial_profile`` (the
        current view's curves: freq_0, slice_0, freq_45, slice_45, freq_r, radial; None when the plot is off)."""
        eq = self.equivariance.eq
        current = self.spectrum_lab.current
        return {
            'eq_psnr_db': None if eq is None or eq['eq_psnr_db'] is None else float(eq['eq_psnr_db']),
            'eq': None if eq is None else dict(eq),
            'radial_profile': None if current is None else current.to_json()['profiles'],
            'lab': self.spectrum_lab.dump(),
            'measure': self.equivariance.measure_result,
            'projection': self.projection.dump(),
            'record': self.record.dump(),
            'keyframes': self.keyframes.dump(),
            'checkpoints': self.checkpoints.dump(),
        }

    # ---- frame loop -------------------------------------------------------------------------------------------
    def run(self) -> int:
        """Runs until the window closes or :meth:`quit`. Returns the exit code."""
        try:
            while self._quit_code is None and not self.window.should_close():
                self.frame()
        finally:
            self.close()
        return self._quit_code or 0

    def frame(self) -> None:
        """One GUI frame; when nothing changes, first an idle wait that may end without drawing (gui_utils IdleGate)."""
        win = self.window
        timeout = win.idle.wait_timeout(busy=self._is_busy())
        if timeout is not None and not win.wait_for_activity(timeout):
            result = self.renderer.get_result()  # e.g. a notice that the render process restarted
            if not self._dispatch_job_updates() and result is None:
                return  # Nothing new: no frame. (Job progress, e.g. a preload, redraws the pane.)
            if result is not None:
                self._on_result(result)
        dt = win.begin_frame()
        self._poll_renderer()
        dropped = win.pop_dropped()
        if dropped:
            self.handle_drop(dropped)
        if self.script is not None:
            self.script.step(self)
        self._apply_performance_settings()
        self._draw_pane()
        args: dict[str, Any] = {}
        for w in self.widgets:
            w.validate()
            w.update_request(args, dt)
        req, notes = clamp_request(RenderRequest(**args))  # The same ranges the renderer checks.
        req = self.keyframes.override(req)  # The timeline's state while previewing a keyframe timeline.
        for note in notes:
            self.notify(note)
        self.record.sample(req)
        self._submit(req)
        self.image_area.draw()
        want = bool(self._screenshots) or bool(self._crop_screenshots) or self._gui_capture
        img = win.end_frame(read_back=want)
        if img is not None:
            self._handle_readback(img)

    def _is_busy(self) -> bool:
        """Whether frames must run at the FPS limit: a render in flight, a script, a pending capture, an animation
        switched on (widget state keys ``*anim``) or text entry (blinking cursor). Changed requests and new results
        count through ``window.idle.mark_active()``; code that changes state from outside the frame loop calls it
        too (and ``glfw.post_empty_event()`` from another thread)."""
        if self.script is not None or self._screenshots or self._gui_capture or self.renderer.is_busy:
            return True
        if any(getattr(w, k, False) is True for w in self.widgets for k in w.STATE_KEYS if k.endswith('anim')):
            return True
        return bool(imgui.get_current_context() is not None and imgui.get_io().want_text_input)

    def _poll_renderer(self) -> None:
        result = self.renderer.get_result()
        if result is not None:
            self._on_result(result)
        self._dispatch_job_updates()

    def _dispatch_job_updates(self) -> bool:
        """Hands the renderer's new job updates to the widgets; True when there were any."""
        updates = getattr(self.renderer, 'job_updates', None)
        got = list(updates()) if updates is not None else []
        for update in got:
            for w in self.widgets:
                w.on_job_update(update)
        return bool(got)

    def _on_result(self, result: RenderResult) -> None:
        self.window.idle.mark_active()
        old = self.view
        self.view = old.advance(result, self._requests.get(result.stamp))
        if self.view.net is not None and self.view.net != old.net:
            self.window.set_title(f'StyleGAN3 visualizer - {display_name(self.view.net.pkl or None)}')
        self.image_area.upload(result)
        for w in self.widgets:
            w.on_result(result)
        err = self.error_text()
        if err and err != self._last_logged_error:
            logger.error('%s', err)
        self._last_logged_error = err

    def _submit(self, req: RenderRequest) -> None:
        if req == self._last_request:
            return  # The renderer filters equal requests too; this only saves the bookkeeping.
        self._remember(self.renderer.set_request(req), req)

    def _remember(self, stamp: int | None, req: RenderRequest) -> None:
        """Keeps the request the renderer numbered ``stamp`` (so a result finds the request it answers)."""
        if stamp is None:
            return
        self.window.idle.mark_active()
        req = req.replace(stamp=stamp)
        self._requests[stamp] = req
        while len(self._requests) > 256:
            self._requests.popitem(last=False)
        self._last_request = req
        self.submitted_stamp = stamp

    def _apply_performance_settings(self) -> None:
        changes = self.performance.pending_changes()
        if not changes:
            return
        if 'fps_limit' in changes:
            self.window.fps_limiter.fps = changes['fps_limit']
        if 'vsync' in changes:
            self.window.set_vsync(changes['vsync'])
        if 'frame_encoding' in changes and hasattr(self.renderer, 'set_frame_encoding'):
            self.renderer.set_frame_encoding(*changes['frame_encoding'])
        if 'separate_process' in changes and self._last_request is not None:
            # A switch renders the current request again under a new stamp.
            self._remember(self.renderer.set_separate_process(changes['separate_process']), self._last_request)
        elif 'separate_process' in changes:
            self.renderer.set_separate_process(changes['separate_process'])
        self.performance.mark_applied(changes)

    def _handle_readback(self, img: np.ndarray) -> None:
        from PIL import Image

        for path in self._screenshots:
            p = pathlib.Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(p)
            logger.info('saved screenshot %s', p)
        self._screenshots = []
        scale = img.shape[1] / max(imgui.get_io().display_size.x, 1.0)  # framebuffer pixels per screen unit
        for path, (x, y, w, h) in self._crop_screenshots:
            x0, y0 = max(int(round(x * scale)), 0), max(int(round(y * scale)), 0)
            crop = img[y0 : int(round((y + h) * scale)), x0 : int(round((x + w) * scale))]
            if crop.size:
                p = pathlib.Path(path)
                p.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(crop).save(p)
                logger.info('saved %s', p)
        self._crop_screenshots = []
        if self._gui_capture:
            self.capture.capture('gui', img)
            self._gui_capture = False

    # ---- drawing ----------------------------------------------------------------------------------------------
    def _draw_pane(self) -> None:
        fs = self.font_size
        io = imgui.get_io()
        imgui.set_next_window_pos(imgui.ImVec2(0, 0))
        imgui.set_next_window_size(imgui.ImVec2(fs * PANE_WIDTH_FONTS, io.display_size.y))
        flags = (
            imgui.WindowFlags_.no_title_bar
            | imgui.WindowFlags_.no_resize
            | imgui.WindowFlags_.no_move
            | imgui.WindowFlags_.no_collapse
            | imgui.WindowFlags_.no_saved_settings
            | imgui.WindowFlags_.no_bring_to_front_on_focus
        )
        imgui.begin('##pane', None, flags)
        for w in self.widgets:
            imgui.push_id(w.KEY)
            open_flag = imgui.TreeNodeFlags_.default_open if w.DEFAULT_OPEN else 0
            if w.KEY in self._section_open:
                imgui.set_next_item_open(self._section_open.pop(w.KEY))
            if imgui.collapsing_header(w.TITLE, open_flag):
                imgui.indent(fs * 0.3)
                w.draw()
                imgui.unindent(fs * 0.3)
                imgui.spacing()
            imgui.pop_id()
        imgui.end()

    def close(self) -> None:
        """Stops the renderer and closes the window (idempotent)."""
        if self.renderer is not None:
            try:
                self.renderer.close()
            finally:
                self.renderer = None
        if self.window is not None:
            self.image_area.close()
            self.window.close()
            self.window = None
