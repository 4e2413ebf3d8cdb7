"""The visualizer app: owns the window, the frame loop and the image area (image, spectrum, overlays); the control
pane is one widget per file (``viz/*_widget.py``).

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

from engine.protocol import RenderRequest, RenderResult, clamp_request, fft_colormap
from engine.sources import display_name
from gui_utils.gl_utils import Texture
from gui_utils.image_view import fit_rect
from gui_utils.imgui_window import ImguiWindow
from viz.capture_widget import CaptureWidget
from viz.equivariance_widget import EquivarianceWidget
from viz.frame_view import FrameView
from viz.latent_widget import LatentWidget
from viz.layer_widget import LayerWidget
from viz.performance_widget import PerformanceWidget
from viz.pickle_widget import PickleWidget
from viz.script import ScriptRunner
from viz.session_widget import SessionWidget
from viz.stylemix_widget import StylemixWidget
from viz.trunc_noise_widget import TruncNoiseWidget
from viz.widget import Widget

logger = logging.getLogger(__name__)

PANE_WIDTH_FONTS = 31  # control pane width in font sizes
ERROR_COLOR = imgui.ImVec4(1.0, 0.5, 0.45, 1.0)
RESTARTING_TEXT = 'restarting render process...'
NOTE_SEC = 5.0


def default_renderer_factory(device: str, separate_process: bool):
    """The real renderer (imported lazily: it is the one place that talks to torch, in its own process)."""
    from engine.async_renderer import AsyncRenderer

    return AsyncRenderer(device=device, separate_process=separate_process)


def spectrum_caption(req: RenderRequest | None) -> str:
    """The caption under the spectrum: which layer and channels of which request it shows."""
    if req is None:
        return 'Spectrum'
    layer = req.layer_name or 'output'
    if req.fft_all:
        which = 'all channels'
    elif req.sel_channels == 1:
        which = f'channel {req.base_channel}'
    else:
        which = f'channels {req.base_channel}-{req.base_channel + req.sel_channels - 1}'
    return f'Spectrum of {layer}, {which}, Kaiser beta {req.fft_beta:g}'


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
        self.capture = CaptureWidget(self, capture_dir=capture_dir)
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
            self.capture,
            self.performance,
            self.session,
        ]
        # Render bookkeeping: the stamps come from the renderer (set_request returns them).
        self.view = FrameView()
        self.submitted_stamp = 0
        self._last_request: RenderRequest | None = None
        self._requests: collections.OrderedDict[int, RenderRequest] = collections.OrderedDict()
        self._image_tex: Texture | None = None
        self._fft_tex: Texture | None = None
        self._cbar_tex: Texture | None = None
        self._screenshots: list[str] = []
        self._gui_capture = False
        self._last_logged_error: str | None = None
        self._dragging_image = False
        self._image_rect = (0.0, 0.0, 0.0, 0.0)
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
        """Shows a short note over the bottom of the image for ``NOTE_SEC`` seconds (e.g. a clamped value)."""
        if not self.notes or self.notes[-1][1] != text:
            logger.info('%s', text)
        self.notes.append((time.monotonic(), str(text)))

    def quit(self, code: int = 0) -> None:
        self._quit_code = int(code)

    def handle_drop(self, paths: list[str]) -> None:
        """Dropped files: a capture (a PNG carrying our state chunk, or its .json sidecar) or a saved session restores
        that state (``engine.states``); W / W+ latents (.npz, .npy) go to the Latent pane; everything else to the
        Network pane (pickles, URLs, run directories)."""
        from engine.states import CAPTURE_FORMAT, SESSION_FORMAT, png_state

        for p in paths:
            low = str(p).lower()
            doc = png_state(p) if low.endswith('.png') else None
            if doc is not None or low.endswith('.json'):
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
        if len(latent_files) < len(paths):
            self.pickle.handle_drop([p for p in paths if p not in latent_files])

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
            'image_rect': [float(v) for v in self._image_rect],
            'layers': [info.name for info in self.view.layers],
            'captures': self.capture.last_paths,
            'widgets': self.get_session()['widgets'],
            'font_size': self.font_size,
            'window_size': list(self.window.window_size) if self.window else None,
            'renderer_pid': getattr(self.renderer, 'pid', None),
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
            if result is None:
                return
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
        for note in notes:
            self.notify(note)
        self._submit(req)
        self._draw_image_area()
        want = bool(self._screenshots) or self._gui_capture
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

    def _on_result(self, result: RenderResult) -> None:
        self.window.idle.mark_active()
        old = self.view
        self.view = old.advance(result, self._requests.get(result.stamp))
        if self.view.net is not None and self.view.net != old.net:
            self.window.set_title(f'StyleGAN3 visualizer - {display_name(self.view.net.pkl or None)}')
        if result.image is not None:
            self._image_tex = self._upload(self._image_tex, result.image)
            if result.fft is not None:
                self._fft_tex = self._upload(self._fft_tex, result.fft)
        for w in self.widgets:
            w.on_result(result)
        err = self.error_text()
        if err and err != self._last_logged_error:
            logger.error('%s', err)
        self._last_logged_error = err

    @staticmethod
    def _upload(tex: Texture | None, img: np.ndarray) -> Texture:
        if tex is None:
            tex = Texture()
        tex.update(img)
        return tex

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

    def _image_area(self) -> tuple[float, float, float, float]:
        io = imgui.get_io()
        x0 = self.font_size * PANE_WIDTH_FONTS
        return x0, 0.0, max(io.display_size.x - x0, 0.0), io.display_size.y

    def _draw_image_area(self) -> None:
        ax, ay, aw, ah = self._image_area()
        dl = imgui.get_background_draw_list()
        pad = self.font_size * 0.5
        view = self.view
        show_fft = view.fft is not None and self._fft_tex is not None and self.layers.fft_show
        if self._image_tex is not None and view.image is not None:
            cw = (aw - pad) / 2 if show_fft else aw
            h, w = view.image.shape[:2]
            ps = imgui.get_io().display_framebuffer_scale.x
            x, y, fw, fh = fit_rect(ax + pad, ay + pad, cw - 2 * pad, ah - 2 * pad, w, h, pixel_scale=ps)
            self._image_rect = (x, y, fw, fh)
            dim = 0xFF808080 if self.error_text() else 0xFFFFFFFF
            dl.add_image(
                imgui.ImTextureRef(self._image_tex.gl_id), imgui.ImVec2(x, y), imgui.ImVec2(x + fw, y + fh), col=dim
            )
            if show_fft:
                self._draw_spectrum(dl, ax + cw + pad, ay + pad, cw - pad, ah - 2 * pad, dim)
        else:
            self._image_rect = (0.0, 0.0, 0.0, 0.0)
        self._handle_image_drag()
        self._draw_overlays(ax, ay, aw, ah)

    def _draw_spectrum(self, dl, x0: float, y0: float, w: float, h: float, col: int) -> None:
        """The FFT view with a colour bar (+-fft_range_db) on its right."""
        fs = self.font_size
        bar_w, label_w = fs * 0.9, fs * 4.2
        fh_, fw_ = self.view.fft.shape[:2]
        ps = imgui.get_io().display_framebuffer_scale.x
        x2, y2, w2, h2 = fit_rect(x0, y0, w - bar_w - label_w - fs * 0.5, h - fs * 1.5, fw_, fh_, pixel_scale=ps)
        if w2 <= 0:
            return
        dl.add_image(
            imgui.ImTextureRef(self._fft_tex.gl_id), imgui.ImVec2(x2, y2), imgui.ImVec2(x2 + w2, y2 + h2), col=col
        )
        if self._cbar_tex is None:
            lut = fft_colormap(256)[::-1]  # top = +range
            self._cbar_tex = Texture(np.repeat(lut[:, None, :], 2, axis=1), nearest=False)
        bx = x2 + w2 + fs * 0.5
        dl.add_image(
            imgui.ImTextureRef(self._cbar_tex.gl_id), imgui.ImVec2(bx, y2), imgui.ImVec2(bx + bar_w, y2 + h2), col=col
        )
        shown = self.view.image_request  # The request that produced this spectrum, not the widgets' current values.
        rng = shown.fft_range_db if shown is not None else self.layers.fft_range_db
        grey = 0xFFC8C8C8
        for frac, label in ((0.0, f'+{rng:g} dB'), (0.5, '0 dB'), (1.0, f'-{rng:g} dB')):
            ty = min(max(y2 + frac * h2 - fs * 0.5, y2), y2 + h2 - fs)
            dl.add_text(imgui.ImVec2(bx + bar_w + fs * 0.3, ty), grey, label)
        dl.add_text(imgui.ImVec2(x2, y2 + h2 + fs * 0.3), grey, spectrum_caption(shown))

    def _handle_image_drag(self) -> None:
        io = imgui.get_io()
        x, y, w, h = self._image_rect
        mx, my = io.mouse_pos.x, io.mouse_pos.y
        inside = w > 0 and x <= mx < x + w and y <= my < y + h
        if not imgui.is_mouse_down(0):
            self._dragging_image = False
        elif imgui.is_mouse_clicked(0):  # The press: start dragging (its delta is how the mouse got here, not a drag).
            self._dragging_image = inside and not io.want_capture_mouse
        elif self._dragging_image:
            self.latent.drag(io.mouse_delta.x, io.mouse_delta.y)

    def _overlay_window(self, name: str, x: float, y: float, w: float) -> bool:
        imgui.set_next_window_pos(imgui.ImVec2(x, y))
        imgui.set_next_window_size(imgui.ImVec2(w, 0))
        imgui.set_next_window_bg_alpha(0.85)
        flags = (
            imgui.WindowFlags_.no_decoration
            | imgui.WindowFlags_.no_move
            | imgui.WindowFlags_.no_saved_settings
            | imgui.WindowFlags_.no_focus_on_appearing
            | imgui.WindowFlags_.no_nav
            | imgui.WindowFlags_.always_auto_resize
        )
        return imgui.begin(name, None, flags)[0]

    def _draw_overlays(self, ax: float, ay: float, aw: float, ah: float) -> None:
        fs = self.font_size
        if aw <= fs * 4:
            return
        if self._draw_link_overlay(ax + fs * 1.5, ay + fs * 1.5, aw - 3 * fs):
            return
        err = self.error_text()
        busy = getattr(self.renderer, 'is_busy', False)
        busy = busy() if callable(busy) else busy
        margin = fs * 1.5
        if self.is_restarting():
            if self._overlay_window('##restarting', ax + margin, ay + margin, aw - 2 * margin):
                imgui.text(RESTARTING_TEXT)
                imgui.text_disabled('The render process stopped; a new one is starting.')
            imgui.end()
        elif err:
            if self._overlay_window('##error', ax + margin, ay + margin, aw - 2 * margin):
                imgui.push_text_wrap_pos(0.0)
                imgui.text_colored(ERROR_COLOR, 'Error')
                imgui.text(err)
                imgui.pop_text_wrap_pos()
                if self.pickle.load_error:
                    if self.pickle.refused is not None:
                        if imgui.button('Trust this file...'):
                            self.pickle._open_trust_popup = True
                        imgui.same_line()
                    if imgui.button('Dismiss'):
                        self.pickle.dismiss_error()
            imgui.end()
        elif self.pickle.is_loading():
            if self._overlay_window('##loading', ax + margin, ay + margin, aw - 2 * margin):
                imgui.text(f'Loading {display_name(self.pickle.pending)} ...')
                imgui.text_disabled('Load another network to cancel.')
            imgui.end()
        elif self.view.image is None:
            if self._overlay_window('##empty', ax + margin, ay + margin, aw - 2 * margin):
                imgui.text('Rendering ...' if busy else 'Drop a network pickle (.pkl) here.')
            imgui.end()
        now = time.monotonic()
        recent = list(dict.fromkeys(text for t, text in self.notes if now - t < NOTE_SEC))[-3:]
        if recent:
            y = ay + ah - margin - fs * 1.6 * len(recent)
            if self._overlay_window('##notes', ax + margin, y, aw - 2 * margin):
                for text in recent:
                    imgui.text(text)
            imgui.end()

    def _draw_link_overlay(self, x: float, y: float, w: float) -> bool:
        """Remote rendering (``--connect``) without a connection: the live status over the image. True if shown."""
        if self.renderer is None or getattr(self.renderer, 'connected', True):
            return False
        if self._overlay_window('##link', x, y, w):
            imgui.push_text_wrap_pos(0.0)
            fatal = getattr(self.renderer, 'fatal_error', None)
            imgui.text_colored(ERROR_COLOR, 'Remote rendering stopped' if fatal else 'Render server')
            imgui.text(str(getattr(self.renderer, 'status', '')))
            imgui.pop_text_wrap_pos()
        imgui.end()
        return True

    def close(self) -> None:
        """Stops the renderer and closes the window (idempotent)."""
        if self.renderer is not None:
            try:
                self.renderer.close()
            finally:
                self.renderer = None
        if self.window is not None:
            for tex in (self._image_tex, self._fft_tex, self._cbar_tex):
                if tex is not None:
                    tex.delete()
            self.window.close()
            self.window = None
