"""Performance widget: GUI / render frame-time plots, FPS limit, vsync, render process, FP32, device, op impls; with
``--connect``, the link to the render server (round-trip time, bytes per frame) and the frame encoding."""

from __future__ import annotations

import collections

import numpy as np
from imgui_bundle import imgui, implot

from viz.widget import Widget, int_field

DEFAULT_DEVICES = ('auto', 'cpu', 'cuda', 'mps')
FRAME_CODECS = ('auto', 'png', 'jpeg', 'webp', 'raw')  # engine.wire.CODECS (viz does not import the wire module)
FRAME_CODEC_HELP = {
    'auto': 'lossless PNG up to 256 px, JPEG at the quality above',
    'png': 'always lossless (large frames cost bandwidth and time)',
    'jpeg': 'lossy at the quality, fast',
    'webp': 'lossy at the quality, smaller than JPEG, slower',
    'raw': 'uncompressed: the fastest on a fast link',
}
FPS_LIMIT_RANGE = (5, 1000)


def device_choices(reported: list[str] | tuple[str, ...] | None, current: str) -> list[str]:
    """Device picker entries: 'auto' + what the renderer reported (else the defaults), always incl. ``current``."""
    out = ['auto'] + [d for d in (reported or DEFAULT_DEVICES) if d != 'auto']
    if current not in out:
        out.append(current)
    return out


def mean_and_fps(times_ms) -> tuple[float, float]:
    """(mean ms, frames per second) of a sequence of frame times (0, 0 when empty)."""
    times = [t for t in times_ms if t > 0]
    if not times:
        return 0.0, 0.0
    m = float(sum(times) / len(times))
    return m, 1e3 / m


class PerformanceWidget(Widget):
    """State: ``fps_limit``, ``vsync``, ``separate_process``, ``force_fp32``, ``device``, and for remote rendering
    ``frame_codec`` (one of FRAME_CODECS) and ``frame_quality`` (1..100)."""

    TITLE = 'Performance'
    KEY = 'performance'
    STATE_KEYS = ('fps_limit', 'vsync', 'separate_process', 'force_fp32', 'device', 'frame_codec', 'frame_quality')
    DEFAULT_OPEN = False

    def __init__(self, viz=None) -> None:
        super().__init__(viz)
        self.fps_limit = 60
        self.vsync = False
        self.separate_process = True
        self.force_fp32 = False
        self.device = 'auto'
        self.frame_codec = 'auto'
        self.frame_quality = 90
        self.render_times_ms: collections.deque[float] = collections.deque(maxlen=120)
        self.impl: dict = {}
        self.ran_on = ''
        self.devices: list[str] | None = None
        self._applied: dict = {}

    def validate(self) -> None:
        self.fps_limit = int(min(max(int(self.fps_limit), FPS_LIMIT_RANGE[0]), FPS_LIMIT_RANGE[1]))
        self.device = str(self.device or 'auto')
        if self.frame_codec not in FRAME_CODECS:
            self.frame_codec = 'auto'
        try:
            self.frame_quality = int(min(max(int(self.frame_quality), 1), 100))
        except (TypeError, ValueError, OverflowError):
            self.frame_quality = 90

    def on_result(self, result) -> None:
        # The first render after a (re)load carries one-time warm-up (first calls into torch and the ops, seconds on
        # CPU): it would swamp the steady-state mean and the plot, so only renders of an already loaded net count.
        if result.render_ms > 0 and not getattr(result, 'load_ms', 0.0) > 0:
            self.render_times_ms.append(float(result.render_ms))
        if result.impl:
            self.impl = dict(result.impl)
        if result.device:
            self.ran_on = str(result.device)
        reported = getattr(result, 'available_devices', None) or getattr(result, 'devices', None)
        if reported:
            self.devices = list(reported)

    def pending_changes(self) -> dict:
        """Settings that changed since the last :meth:`mark_applied` (the app applies them to window/renderer)."""
        cur = {
            'fps_limit': self.fps_limit,
            'vsync': self.vsync,
            'separate_process': self.separate_process,
            'frame_encoding': (self.frame_codec, self.frame_quality),
        }
        return {k: v for k, v in cur.items() if self._applied.get(k) != v}

    def mark_applied(self, changes: dict) -> None:
        self._applied.update(changes)

    def update_request(self, args, dt) -> None:
        args['force_fp32'] = bool(self.force_fp32)
        args['device'] = self.device

    def _link_stats(self) -> dict | None:
        stats = getattr(getattr(self.viz, 'renderer', None), 'link_stats', None)
        return stats() if callable(stats) else None

    def _draw_link(self) -> None:
        """Remote rendering: server status, round-trip time, bytes per frame, frame encoding."""
        link = self._link_stats()
        if link is None:
            return
        fs = self.font_size
        imgui.separator()
        imgui.push_text_wrap_pos(0.0)
        imgui.text_disabled(str(link.get('status', '')))
        imgui.pop_text_wrap_pos()
        kib = float(link.get('bytes_per_frame', 0.0)) / 1024
        imgui.text(f'Network RTT {link.get("rtt_ms", 0.0):6.1f} ms   {kib:8.1f} KiB/frame')
        imgui.text(f'Request to frame {link.get("frame_ms", 0.0):6.1f} ms')
        imgui.set_next_item_width(fs * 5)
        changed, i = imgui.combo('Frames', FRAME_CODECS.index(self.frame_codec), list(FRAME_CODECS))
        if changed:
            self.frame_codec = FRAME_CODECS[i]
        if imgui.is_item_hovered():
            imgui.set_tooltip(FRAME_CODEC_HELP[self.frame_codec])
        imgui.same_line()
        imgui.begin_disabled(self.frame_codec in ('png', 'raw'))
        imgui.set_next_item_width(fs * 6)
        _, q = imgui.slider_int('Quality', int(self.frame_quality), 1, 100)
        self.frame_quality = int(min(max(q, 1), 100))
        imgui.end_disabled()
        imgui.separator()

    def _plot(self, label: str, times_ms, height: float) -> None:
        values = np.asarray(list(times_ms), dtype=np.float64)
        if implot.begin_plot(
            label,
            imgui.ImVec2(-1, height),
            implot.Flags_.no_legend | implot.Flags_.no_title | implot.Flags_.no_mouse_text | implot.Flags_.no_menus,
        ):
            implot.setup_axes('', 'ms', implot.AxisFlags_.no_tick_labels, implot.AxisFlags_.auto_fit)
            implot.setup_axis_limits(implot.ImAxis_.x1, 0, max(len(values), 2) - 1, implot.Cond_.always)
            if len(values):
                implot.plot_line(label, values)
            implot.end_plot()

    def draw(self) -> None:
        fs = self.font_size
        gui_times = self.viz.window.frame_timer.times_ms if self.viz is not None and self.viz.window else []
        g_ms, g_fps = mean_and_fps(gui_times)
        r_ms, r_fps = mean_and_fps(self.render_times_ms)
        imgui.text(f'GUI     {g_ms:6.1f} ms  {g_fps:6.1f} FPS')
        self._plot('GUI##plot', gui_times, fs * 3.5)
        imgui.text(f'Render  {r_ms:6.1f} ms  {r_fps:6.1f} FPS')
        self._plot('Render##plot', self.render_times_ms, fs * 3.5)
        imgui.set_next_item_width(fs * 6)
        self.fps_limit = int_field('FPS limit', self.fps_limit, *FPS_LIMIT_RANGE, 5, 30)
        imgui.same_line()
        _, self.vsync = imgui.checkbox('Vsync', self.vsync)
        _, self.separate_process = imgui.checkbox('Render process', self.separate_process)
        if imgui.is_item_hovered():
            imgui.set_tooltip('Render in a separate process so the GUI stays responsive')
        imgui.same_line()
        _, self.force_fp32 = imgui.checkbox('Force FP32', self.force_fp32)
        choices = device_choices(self.devices, self.device)
        imgui.same_line()
        imgui.set_next_item_width(fs * 5)
        changed, i = imgui.combo('Device', choices.index(self.device), choices)
        if changed:
            self.device = choices[i]
        ran = f'ran on {self.ran_on}' if self.ran_on else 'not rendered yet'
        impl = ', '.join(f'{k}: {v}' for k, v in sorted(self.impl.items())) or '-'
        self._draw_link()
        imgui.text_disabled(f'Device: {ran}')
        imgui.push_text_wrap_pos(0.0)
        imgui.text_disabled(f'Ops: {impl}')
        imgui.pop_text_wrap_pos()
