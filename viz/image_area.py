"""The image area right of the control pane: the image (integer zoom up, smooth down), the spectrum with its colour
bar and caption, dragging on the image, and the overlays (error, "restarting render process...", loading, notes,
remote link status). It reads the app's frame view and never changes a request except through the Latent widget's
drag; the app (``viz.visualizer``) owns the frame loop.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from imgui_bundle import imgui

from engine.protocol import RenderRequest, RenderResult, fft_colormap
from engine.sources import display_name
from gui_utils.gl_utils import Texture
from gui_utils.image_view import fit_rect

if TYPE_CHECKING:
    from viz.visualizer import Visualizer

ERROR_COLOR = imgui.ImVec4(1.0, 0.5, 0.45, 1.0)
RESTARTING_TEXT = 'restarting render process...'
NOTE_SEC = 5.0  # how long a note (e.g. a clamped value) stays over the image


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


class ImageArea:
    """Draws the image area of ``app`` each frame (see the module docstring) and owns its GL textures."""

    def __init__(self, app: Visualizer, x0_fonts: float) -> None:
        self.app = app
        self.x0_fonts = x0_fonts  # the pane's width in font sizes: the area starts there
        self.image_rect = (0.0, 0.0, 0.0, 0.0)  # where the image was drawn (x, y, w, h), window pixels
        self._dragging = False
        self._image_tex: Texture | None = None
        self._fft_tex: Texture | None = None
        self._cbar_tex: Texture | None = None

    def upload(self, result: RenderResult) -> None:
        """Puts a new result's image (and FFT view) into the textures."""
        if result.image is not None:
            self._image_tex = _upload(self._image_tex, result.image)
            if result.fft is not None:
                self._fft_tex = _upload(self._fft_tex, result.fft)

    def close(self) -> None:
        for tex in (self._image_tex, self._fft_tex, self._cbar_tex):
            if tex is not None:
                tex.delete()
        self._image_tex = self._fft_tex = self._cbar_tex = None

    def _rect(self) -> tuple[float, float, float, float]:
        io = imgui.get_io()
        x0 = self.app.font_size * self.x0_fonts
        return x0, 0.0, max(io.display_size.x - x0, 0.0), io.display_size.y

    def draw(self) -> None:
        ax, ay, aw, ah = self._rect()
        dl = imgui.get_background_draw_list()
        pad = self.app.font_size * 0.5
        view = self.app.view
        show_fft = view.fft is not None and self._fft_tex is not None and self.app.layers.fft_show
        lab = getattr(self.app, 'spectrum_lab', None)
        show_plot = lab is not None and lab.show_plot and view.image is not None
        if self._image_tex is not None and view.image is not None:
            columns = 1 + int(show_fft) + int(show_plot)  # image | FFT view | radial plot
            cw = (aw - pad * (columns - 1)) / columns
            h, w = view.image.shape[:2]
            ps = imgui.get_io().display_framebuffer_scale.x
            x, y, fw, fh = fit_rect(ax + pad, ay + pad, cw - 2 * pad, ah - 2 * pad, w, h, pixel_scale=ps)
            self.image_rect = (x, y, fw, fh)
            dim = 0xFF808080 if self.app.error_text() else 0xFFFFFFFF
            dl.add_image(
                imgui.ImTextureRef(self._image_tex.gl_id), imgui.ImVec2(x, y), imgui.ImVec2(x + fw, y + fh), col=dim
            )
            if show_fft:
                self._draw_spectrum(dl, ax + cw + pad, ay + pad, cw - pad, ah - 2 * pad, dim)
            if show_plot:
                px = ax + (columns - 1) * (cw + pad)
                side = min(cw - pad, ah - 2 * pad)
                lab.draw_plot(px, ay + pad + max((ah - 2 * pad - side) / 2, 0.0), cw - pad, side)
            elif lab is not None:
                lab.plot_rect = (0.0, 0.0, 0.0, 0.0)
        else:
            self.image_rect = (0.0, 0.0, 0.0, 0.0)
        self._handle_drag()
        self._draw_overlays(ax, ay, aw, ah)

    def _draw_spectrum(self, dl, x0: float, y0: float, w: float, h: float, col: int) -> None:
        """The FFT view with a colour bar (+-fft_range_db) on its right."""
        fs = self.app.font_size
        bar_w, label_w = fs * 0.9, fs * 4.2
        fh_, fw_ = self.app.view.fft.shape[:2]
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
        shown = self.app.view.image_request  # The request that produced this spectrum, not the widgets' current values.
        rng = shown.fft_range_db if shown is not None else self.app.layers.fft_range_db
        grey = 0xFFC8C8C8
        for frac, label in ((0.0, f'+{rng:g} dB'), (0.5, '0 dB'), (1.0, f'-{rng:g} dB')):
            ty = min(max(y2 + frac * h2 - fs * 0.5, y2), y2 + h2 - fs)
            dl.add_text(imgui.ImVec2(bx + bar_w + fs * 0.3, ty), grey, label)
        dl.add_text(imgui.ImVec2(x2, y2 + h2 + fs * 0.3), grey, spectrum_caption(shown))

    def _handle_drag(self) -> None:
        io = imgui.get_io()
        x, y, w, h = self.image_rect
        mx, my = io.mouse_pos.x, io.mouse_pos.y
        inside = w > 0 and x <= mx < x + w and y <= my < y + h
        if not imgui.is_mouse_down(0):
            self._dragging = False
        elif imgui.is_mouse_clicked(0):  # The press: start dragging (its delta is how the mouse got here, not a drag).
            self._dragging = inside and not io.want_capture_mouse
        elif self._dragging:
            self.app.latent.drag(io.mouse_delta.x, io.mouse_delta.y)

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
        fs = self.app.font_size
        if aw <= fs * 4:
            return
        if self._draw_link_overlay(ax + fs * 1.5, ay + fs * 1.5, aw - 3 * fs):
            return
        err = self.app.error_text()
        busy = getattr(self.app.renderer, 'is_busy', False)
        busy = busy() if callable(busy) else busy
        margin = fs * 1.5
        if self.app.is_restarting():
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
                if self.app.pickle.load_error:
                    if self.app.pickle.refused is not None:
                        if imgui.button('Trust this file...'):
                            self.app.pickle._open_trust_popup = True
                        imgui.same_line()
                    if imgui.button('Dismiss'):
                        self.app.pickle.dismiss_error()
            imgui.end()
        elif self.app.pickle.is_loading():
            if self._overlay_window('##loading', ax + margin, ay + margin, aw - 2 * margin):
                imgui.text(f'Loading {display_name(self.app.pickle.pending)} ...')
                imgui.text_disabled('Load another network to cancel.')
            imgui.end()
        elif self.app.view.image is None:
            if self._overlay_window('##empty', ax + margin, ay + margin, aw - 2 * margin):
                imgui.text('Rendering ...' if busy else 'Drop a network pickle (.pkl) here.')
            imgui.end()
        now = time.monotonic()
        recent = list(dict.fromkeys(text for t, text in self.app.notes if now - t < NOTE_SEC))[-3:]
        if recent:
            y = ay + ah - margin - fs * 1.6 * len(recent)
            if self._overlay_window('##notes', ax + margin, y, aw - 2 * margin):
                for text in recent:
                    imgui.text(text)
            imgui.end()

    def _draw_link_overlay(self, x: float, y: float, w: float) -> bool:
        """Remote rendering (``--connect``) without a connection: the live status over the image. True if shown."""
        if self.app.renderer is None or getattr(self.app.renderer, 'connected', True):
            return False
        if self._overlay_window('##link', x, y, w):
            imgui.push_text_wrap_pos(0.0)
            fatal = getattr(self.app.renderer, 'fatal_error', None)
            imgui.text_colored(ERROR_COLOR, 'Remote rendering stopped' if fatal else 'Render server')
            imgui.text(str(getattr(self.app.renderer, 'status', '')))
            imgui.pop_text_wrap_pos()
        imgui.end()
        return True


def _upload(tex: Texture | None, img: np.ndarray) -> Texture:
    if tex is None:
        tex = Texture()
    tex.update(img)
    return tex
