"""A GLFW window with an OpenGL 3.3 core forward-compatible context (works on Linux, Windows and macOS)."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import glfw  # import before imgui_bundle so that pip's glfw library is used

from gui_utils.fps import FpsLimiter, FrameTimer, IdleGate

logger = logging.getLogger(__name__)


class DisplayError(RuntimeError):
    """No display / OpenGL context could be opened (user-facing message)."""


def display_problem() -> str | None:
    """Returns why no window can be opened on this machine, or None when a display looks available (cheap check)."""
    if sys.platform.startswith('linux') and not (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
        return (
            'no display: neither DISPLAY nor WAYLAND_DISPLAY is set. Run on a desktop session, forward X '
            '(ssh -X), or use a virtual display: xvfb-run -s "-screen 0 1920x1080x24" python visualizer.py'
        )
    return None


def _glfw_error_text() -> str:
    try:
        code, desc = glfw.get_error()
    except Exception:  # noqa: BLE001 -- best-effort diagnostics only
        return ''
    if not code:
        return ''
    return desc.decode(errors='replace') if isinstance(desc, bytes) else str(desc)


class GlfwWindow:
    """GLFW window + GL context, vsync, FPS limit, drag-and-drop and content scale.

    Args:
        title: window title.
        window_width, window_height: initial size in screen coordinates.
        vsync: swap interval 1 (True) or 0.
        fps_limit: frames per second cap (None/0 = none).
        visible: show the window (False for off-screen use; read-back still works).

    Raises:
        DisplayError: no display, or GLFW/OpenGL 3.3 could not be initialised.
    """

    def __init__(
        self,
        *,
        title: str = 'GLFW window',
        window_width: int = 1280,
        window_height: int = 800,
        vsync: bool = False,
        fps_limit: float | None = 60,
        visible: bool = True,
    ) -> None:
        problem = display_problem()
        if problem is not None:
            raise DisplayError(problem)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            ok = glfw.init()
        if not ok:
            raise DisplayError(f'could not initialise GLFW ({_glfw_error_text() or "no display?"})')
        glfw.default_window_hints()
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, glfw.TRUE)
        glfw.window_hint(glfw.VISIBLE, glfw.TRUE if visible else glfw.FALSE)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            handle = glfw.create_window(int(window_width), int(window_height), title, None, None)
        if not handle:
            err = _glfw_error_text()
            glfw.terminate()
            raise DisplayError(f'could not open an OpenGL 3.3 core window ({err or "unknown GLFW error"})')
        self.handle = handle
        glfw.make_context_current(handle)
        self._dropped: list[str] = []
        glfw.set_drop_callback(handle, self._on_drop)
        self.fps_limiter = FpsLimiter(fps_limit)
        self.frame_timer = FrameTimer()
        self.idle = IdleGate()
        self.frames_drawn = 0  # frames presented by swap()
        self._vsync = False
        self.set_vsync(vsync)
        self._closed = False

    # ---- properties -------------------------------------------------------------------------------------------
    @property
    def window_size(self) -> tuple[int, int]:
        """(width, height) in screen coordinates."""
        return tuple(glfw.get_window_size(self.handle))  # type: ignore[return-value]

    @property
    def framebuffer_size(self) -> tuple[int, int]:
        """(width, height) in pixels (larger than :attr:`window_size` on Retina displays)."""
        return tuple(glfw.get_framebuffer_size(self.handle))  # type: ignore[return-value]

    @property
    def content_scale(self) -> float:
        """The monitor's content scale divided by the framebuffer scale: UI points per screen coordinate.

        On Windows/Linux a 150% display gives 1.5; on macOS Retina the framebuffer is already 2x the window
        so this gives 1.0 and ImGui renders at full resolution through ``display_framebuffer_scale``.
        """
        xs, ys = glfw.get_window_content_scale(self.handle)
        ww, fw = self.window_size[0], self.framebuffer_size[0]
        fb_scale = fw / ww if ww > 0 else 1.0
        s = max(xs, ys) / fb_scale if fb_scale > 0 else 1.0
        return float(s) if s > 0 else 1.0

    @property
    def vsync(self) -> bool:
        return self._vsync

    def set_vsync(self, enable: bool) -> None:
        """Turns vertical sync on (swap interval 1) or off (0)."""
        glfw.make_context_current(self.handle)
        glfw.swap_interval(1 if enable else 0)
        self._vsync = bool(enable)

    def set_title(self, title: str) -> None:
        glfw.set_window_title(self.handle, title)

    def set_window_size(self, width: int, height: int) -> None:
        glfw.set_window_size(self.handle, int(width), int(height))

    # ---- drag and drop ----------------------------------------------------------------------------------------
    def _on_drop(self, _window, paths) -> None:
        self._dropped.extend(str(p) for p in paths)

    def simulate_drop(self, paths: list[str]) -> None:
        """Feeds ``paths`` through the same path as a real drop (tests / scripts)."""
        self._on_drop(self.handle, paths)

    def pop_dropped(self) -> list[str]:
        """Returns and clears the files dropped since the last call."""
        out, self._dropped = self._dropped, []
        return out

    # ---- frame loop -------------------------------------------------------------------------------------------
    def watch_input(self) -> None:
        """Chains a callback in front of every GLFW input/window callback installed so far (call after the GUI
        backend attached its own) that marks :attr:`idle` active, so an idle loop keeps drawing after any input."""
        setters = (
            glfw.set_key_callback,
            glfw.set_char_callback,
            glfw.set_cursor_pos_callback,
            glfw.set_cursor_enter_callback,
            glfw.set_mouse_button_callback,
            glfw.set_scroll_callback,
            glfw.set_window_size_callback,
            glfw.set_framebuffer_size_callback,
            glfw.set_window_focus_callback,
            glfw.set_window_iconify_callback,
            glfw.set_window_refresh_callback,
            glfw.set_window_close_callback,
            glfw.set_drop_callback,
        )
        for setter in setters:
            self._chain_callback(setter)

    def _chain_callback(self, setter) -> None:
        prev: list = [None]

        def callback(*args) -> None:
            self.idle.mark_active()
            if prev[0] is not None:
                prev[0](*args)

        prev[0] = setter(self.handle, callback)

    def wait_for_activity(self, timeout: float) -> bool:
        """Idle wait: blocks until input or a window event arrives or ``timeout`` seconds pass (no frame is drawn).

        Returns:
            True when something happened (the caller should draw a frame), False on a plain timeout. The frame
            timer restarts either way, so the next frame reports dt = 0 and no idle time enters the frame-time plots.
        """
        before = self.idle.last_active
        glfw.wait_events_timeout(max(float(timeout), 0.0))
        self.frame_timer.restart()
        return self.idle.last_active != before or self.should_close()

    def should_close(self) -> bool:
        return bool(glfw.window_should_close(self.handle))

    def request_close(self) -> None:
        glfw.set_window_should_close(self.handle, True)

    def swap(self) -> None:
        """Presents the frame, then sleeps to honour the FPS limit."""
        glfw.swap_buffers(self.handle)
        self.frames_drawn += 1
        self.fps_limiter.tick()

    def close(self) -> None:
        """Destroys the window and terminates GLFW (safe to call twice)."""
        if not getattr(self, '_closed', True):
            glfw.destroy_window(self.handle)
            glfw.terminate()
            self._closed = True
