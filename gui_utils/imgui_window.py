"""GLFW window + Dear ImGui (imgui-bundle) + ImPlot, drawn with imgui-bundle's pure-Python OpenGL3 backend."""

from __future__ import annotations

import pathlib

import glfw  # noqa: F401 -- before imgui_bundle: use pip's glfw library
import numpy as np
import OpenGL.GL as gl
from imgui_bundle import imgui, implot
from imgui_bundle.python_backends.glfw_backend import GlfwRenderer

from gui_utils import gl_utils
from gui_utils.glfw_window import GlfwWindow

FONT_PATH = pathlib.Path(__file__).resolve().parent / 'fonts' / 'Roboto-Regular.ttf'
BASE_FONT_PX = 14.0


def compute_ui_scale(content_scale: float, user_scale: float) -> float:
    """UI scale = monitor content scale x user scale, clamped to a usable 0.5..4.

    Raises:
        ValueError: ``user_scale`` is not positive.
    """
    if not user_scale > 0:
        raise ValueError(f'compute_ui_scale(): user_scale must be > 0, got {user_scale}; try --ui-scale 1')
    return float(min(max(content_scale * user_scale, 0.5), 4.0))


class ImguiWindow(GlfwWindow):
    """A :class:`GlfwWindow` with ImGui/ImPlot contexts, the bundled font and UI scaling.

    Usage per frame: ``begin_frame()``, imgui calls, ``end_frame()``.

    Args:
        ui_scale: user scale multiplied with the monitor's content scale.
        clear_color: RGB background, 0..1.
        **kwargs: forwarded to :class:`GlfwWindow`.
    """

    def __init__(self, *, ui_scale: float = 1.0, clear_color=(0.1, 0.1, 0.1), **kwargs) -> None:
        super().__init__(**kwargs)
        self.clear_color = tuple(clear_color)
        self._imgui_ctx = imgui.create_context()
        self._implot_ctx = implot.create_context()
        io = imgui.get_io()
        io.set_ini_filename(None)  # layout is ours; never write imgui.ini into the user's cwd
        io.config_flags |= imgui.ConfigFlags_.nav_enable_keyboard
        self.font = io.fonts.add_font_from_file_ttf(str(FONT_PATH), BASE_FONT_PX)
        self.renderer = GlfwRenderer(self.handle, attach_callbacks=True)
        self.watch_input()  # after the backend's callbacks: input ends an idle wait and marks activity
        imgui.style_colors_dark()
        style = imgui.get_style()
        style.window_rounding = 0.0
        style.frame_rounding = 2.0
        self.user_scale = 1.0
        self.ui_scale = 1.0
        self._style_scaled = 1.0
        self.set_ui_scale(ui_scale)
        self._last_frame: np.ndarray | None = None
        # Scripted runs (tests, --screenshot) set a fixed frame step so that ImGui's time-based effects (the modal
        # background dim fade, nav highlights) and the app's animations depend on frame counts, not wall time.
        self.fixed_dt: float | None = None

    @property
    def font_size(self) -> float:
        """Current font size in UI pixels (the unit widgets size themselves in)."""
        return BASE_FONT_PX * self.ui_scale

    def set_ui_scale(self, user_scale: float) -> None:
        """Sets the user scale; the effective scale also includes the monitor's content scale."""
        self.user_scale = float(user_scale)
        self.ui_scale = compute_ui_scale(self.content_scale, self.user_scale)
        style = imgui.get_style()
        style.font_scale_main = self.ui_scale
        # Paddings/spacings scale multiplicatively; undo the previous factor first.
        style.scale_all_sizes(self.ui_scale / self._style_scaled)
        self._style_scaled = self.ui_scale

    def begin_frame(self) -> float:
        """Polls events and starts an ImGui frame.

        Returns:
            Seconds since the previous frame, 0 after :meth:`wait_for_activity` (:attr:`fixed_dt` instead when that is set; the frame timer behind the
            performance plots always measures wall time).
        """
        dt = self.frame_timer.tick()
        glfw.poll_events()
        self.renderer.process_inputs()
        if self.fixed_dt is not None:
            dt = float(self.fixed_dt)
            imgui.get_io().delta_time = dt
        imgui.new_frame()
        return dt

    def end_frame(self, *, read_back: bool = False) -> np.ndarray | None:
        """Renders ImGui, optionally reads the frame back, presents and applies the FPS limit.

        Args:
            read_back: also return the finished frame.

        Returns:
            uint8 [H, W, 3] framebuffer contents (top row first) when ``read_back``, else None.
        """
        imgui.render()
        fw, fh = self.framebuffer_size
        gl.glViewport(0, 0, fw, fh)
        gl.glClearColor(*self.clear_color, 1.0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT)
        self.renderer.render(imgui.get_draw_data())
        img = gl_utils.read_pixels(fw, fh) if read_back and fw > 0 and fh > 0 else None
        self.swap()
        return img

    def close(self) -> None:
        if getattr(self, '_closed', True):
            return
        try:
            self.renderer.shutdown()
        finally:
            implot.destroy_context(self._implot_ctx)
            imgui.destroy_context(self._imgui_ctx)
            super().close()
