"""Capture widget: save the image or the whole GUI as numbered PNGs, each with a JSON sidecar of the exact state."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import pathlib
import re

import numpy as np
from imgui_bundle import imgui

from engine.states import CAPTURE_FORMAT, STATE_VERSION, save_png_with_state, write_json
from viz.widget import Widget

logger = logging.getLogger(__name__)

_NUMBERED = re.compile(r'^(\d{5,})-')
CAPTURE_KINDS = ('image', 'gui')


def next_capture_index(capture_dir: str | pathlib.Path) -> int:
    """One past the largest ``NNNNN-*`` number in ``capture_dir`` (0 when empty or missing)."""
    d = pathlib.Path(capture_dir)
    if not d.is_dir():
        return 0
    nums = [int(m.group(1)) for p in d.iterdir() if (m := _NUMBERED.match(p.name))]
    return max(nums) + 1 if nums else 0


def capture_sidecar(kind: str, request, net, widgets: dict | None = None) -> dict:
    """The JSON sidecar: ``request`` (RenderRequest.to_dict(): enough to re-render), ``network`` (NetInfo) and the
    widget state (a saved session) for reopening the GUI as it was."""
    return {
        'format': CAPTURE_FORMAT,
        'version': STATE_VERSION,
        'kind': kind,
        'time': datetime.datetime.now().isoformat(timespec='seconds'),
        'request': request.to_dict() if request is not None else None,
        'network': dataclasses.asdict(net) if net is not None else None,
        'widgets': widgets or {},
    }


def write_capture(
    capture_dir: str | pathlib.Path, img_u8: np.ndarray, kind: str, sidecar: dict, fft_u8: np.ndarray | None = None
) -> tuple[pathlib.Path, pathlib.Path]:
    """Writes ``NNNNN-<kind>.png`` and ``NNNNN-<kind>.json`` with the next free number (atomically); the PNG carries
    the sidecar in a text chunk too (``engine.states.save_png_with_state``), so either file reopens the state. With
    ``fft_u8`` (the FFT panel of an image capture) also ``NNNNN-<kind>-fft.png``.

    Args:
        capture_dir: output directory (created).
        img_u8: uint8 [H, W, 3] (or [H, W]) image.
        kind: 'image' (the rendered image) or 'gui' (the whole window).
        sidecar: JSON-ready dict (see :func:`capture_sidecar`).
        fft_u8: optional uint8 [H, W, 3] FFT view shown next to the image.

    Returns:
        (png path, json path).

    Raises:
        ValueError: unknown ``kind`` or an image that is not uint8 [H, W(, 3)].
    """
    if kind not in CAPTURE_KINDS:
        raise ValueError(f'write_capture(): kind must be one of {CAPTURE_KINDS}, got {kind!r}')
    img_u8 = np.asarray(img_u8)
    if img_u8.dtype != np.uint8 or img_u8.ndim not in (2, 3):
        raise ValueError(f'write_capture(): img_u8 must be uint8 [H, W(, C)], got {img_u8.dtype} {list(img_u8.shape)}')
    d = pathlib.Path(capture_dir)
    d.mkdir(parents=True, exist_ok=True)
    idx = next_capture_index(d)
    png = d / f'{idx:05d}-{kind}.png'
    side = d / f'{idx:05d}-{kind}.json'
    if fft_u8 is not None:
        save_png_with_state(d / f'{idx:05d}-{kind}-fft.png', np.asarray(fft_u8), sidecar)
    save_png_with_state(png, img_u8, sidecar)
    write_json(side, sidecar)
    return png, side


class CaptureWidget(Widget):
    """Save image / Save GUI buttons and the capture directory. State: ``capture_dir``."""

    TITLE = 'Capture'
    KEY = 'capture'
    STATE_KEYS = ('capture_dir',)
    DEFAULT_OPEN = False

    def __init__(self, viz=None, capture_dir: str = 'captures') -> None:
        super().__init__(viz)
        self.capture_dir = capture_dir
        self.status = ''
        self.last_paths: list[str] = []
        self.field_width = 0.0  # drawn width of the path field (tests)

    def capture(self, kind: str, img_u8: np.ndarray | None, fft_u8: np.ndarray | None = None) -> pathlib.Path | None:
        """Saves ``img_u8`` (and the FFT panel ``fft_u8`` when given) with the app's current request / net / widget
        state. Returns the PNG path."""
        if img_u8 is None:
            self.status = 'Nothing to capture yet'
            return None
        viz = self.viz
        side = capture_sidecar(
            kind,
            self.view.image_request,
            self.view.net,
            viz.get_session()['widgets'] if viz else None,
        )
        try:
            png, js = write_capture(self.capture_dir, img_u8, kind, side, fft_u8)
        except (OSError, ValueError) as e:
            self.status = f'Capture failed: {e}'
            logger.error('%s', self.status)
            return None
        self.status = f'Saved {png.name}'
        self.last_paths = [str(png), str(js)]
        logger.info('captured %s', png)
        return png

    def draw(self) -> None:
        fs = self.font_size
        imgui.set_next_item_width(-imgui.calc_text_size('Dir').x - fs * 0.6)  # the pane's width: paths are long
        _, self.capture_dir = imgui.input_text('Dir##capture', self.capture_dir)
        self.field_width = imgui.get_item_rect_size().x
        if imgui.button('Save image') and self.viz is not None:
            self.capture('image', self.view.image, self.view.fft)
        imgui.same_line()
        if imgui.button('Save GUI') and self.viz is not None:
            self.viz.request_gui_capture()
        if self.status:
            imgui.same_line()
            imgui.text_disabled(self.status)
