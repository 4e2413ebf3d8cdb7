"""Latent widget: the seed-grid latent (docs/compatibility.md §6) with drag, animation, snap and a class picker; W/W+
latents saved to and loaded from `.npz` / `.npy` files (`engine.latent_files`, the projector format)."""

from __future__ import annotations

import logging
import math
import os
import pathlib
from typing import Any

import numpy as np
from imgui_bundle import imgui

from engine.latent_files import LatentFileError, read_ws, write_ws
from viz.widget import Widget, edited, int_field, seed_field

logger = logging.getLogger(__name__)

SEED_GRID_COLUMNS = 100  # seed = sx + sy * 100
GRID_LIMIT = 2.0**40  # |x|, |y| beyond this are clamped (floats stay exact well past every uint32 seed)
DRAG_SEEDS_PER_FONT_PX = 0.04  # mouse drag: seeds moved per font-size of mouse travel


def seed_grid_weights(x: float, y: float) -> tuple[tuple[int, float], ...]:
    """Blend of the four integer neighbours of the seed-grid point (x, y).

    The neighbour (sx, sy) has seed ``sx + sy * 100`` wrapped to uint32 and bilinear weight
    ``(1 - |x - sx|) * (1 - |y - sy|)``; zero weights are dropped, so integer points give a single seed.

    Args:
        x, y: position on the seed grid (any finite floats).

    Returns:
        ((seed, weight), ...) with weights in (0, 1] summing to 1 (the RenderRequest.w0_seeds format).

    Raises:
        ValueError: x or y is not finite.
    """
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f'seed_grid_weights(): x and y must be finite, got ({x}, {y})')
    x0, y0 = math.floor(x), math.floor(y)
    fx, fy = x - x0, y - y0
    out = []
    for dy in (0, 1):
        for dx in (0, 1):
            w = (fx if dx else 1.0 - fx) * (fy if dy else 1.0 - fy)
            if w > 0:
                seed = (x0 + dx + (y0 + dy) * SEED_GRID_COLUMNS) & 0xFFFFFFFF
                out.append((int(seed), float(w)))
    return tuple(out)


def seed_to_grid(seed: int) -> tuple[float, float]:
    """Grid point of an integer seed (inverse of the seed formula for seeds >= 0)."""
    seed = int(seed) & 0xFFFFFFFF
    return float(seed % SEED_GRID_COLUMNS), float(seed // SEED_GRID_COLUMNS)


def grid_to_seed(x: float, y: float) -> int:
    """Seed of the grid point nearest to (x, y)."""
    return (round(x) + round(y) * SEED_GRID_COLUMNS) & 0xFFFFFFFF


class LatentWidget(Widget):
    """Seed, fractional offset, Drag, Anim + speed, Snap, Reset; class picker for conditional networks.

    State: ``x, y`` grid position; ``anim`` / ``speed`` (seeds per second along x); ``class_idx`` (-1 = drawn per
    seed like the reference GUI, else the class index); ``w_file`` the latent file of Load W / Save W; ``w_loaded``
    whether the latent shown is ``w_file``'s (a session saved with it reloads the file once its network is shown).

    A loaded latent (``loaded_ws``, [num_ws, w_dim]) replaces the seed blend in the request until the grid position
    changes (a new seed, drag, animation, Reset) or Clear W; truncation, stylemix and transforms still apply.
    Save W asks the renderer for the rendered ws (``return_ws``) and writes them when the answer arrives.
    """

    TITLE = 'Latent'
    KEY = 'latent'
    STATE_KEYS = ('x', 'y', 'anim', 'speed', 'class_idx', 'w_file', 'w_loaded')

    def __init__(self, viz=None) -> None:
        super().__init__(viz)
        self.x = 0.0
        self.y = 0.0
        self.anim = False
        self.speed = 0.25
        self.class_idx = -1
        self.w_file = 'latent.npz'
        self.loaded_ws: tuple[tuple[float, ...], ...] | None = None
        self.loaded_from: str | None = None
        self._loaded_at: tuple[float, float] | None = None
        self._pending_load: str | None = None
        self._pending_save: str | None = None
        self.w_status = ''

    # ---- state ------------------------------------------------------------------------------------------------
    @property
    def w_loaded(self) -> bool:
        """Whether the latent shown (or waiting for its network) is the file ``w_file`` (not seeds, not a
        projection's result)."""
        if self._pending_load is not None:
            return self._pending_load == self.w_file
        return self.loaded_ws is not None and self.loaded_from == self.w_file

    @w_loaded.setter
    def w_loaded(self, value: bool) -> None:
        """True: (re)loads ``w_file`` once the network being loaded is shown (a session is applied before its
        network loads); False: back to seeds."""
        self.clear_w()
        if self._pending_load is not None:
            self.w_status = ''  # No longer waiting.
        self._pending_load = None
        if value:
            self._pending_load = self.w_file
            self.w_status = f'{pathlib.Path(self.w_file).name}: waiting for the network'

    def set_state(self, state: dict[str, Any]) -> None:
        """Widget.set_state, with ``w_loaded`` applied last (after ``w_file``); absent, the latent stays as it is."""
        state = dict(state)
        restore = state.pop('w_loaded', None)
        super().set_state(state)
        if restore is not None:
            self.w_loaded = bool(restore)

    # ---- latent files -----------------------------------------------------------------------------------------
    def load_w(self, path: str | os.PathLike) -> bool:
        """Loads a latent file (see `engine.latent_files.read_ws`) for the displayed network; before a network is
        shown the load waits for it. Returns True when loaded now; errors go to ``w_status`` (nothing raises)."""
        path = os.fspath(path)
        self.w_file = path
        net = self.net
        if net is None:
            self._pending_load = path
            self.w_status = f'{pathlib.Path(path).name}: waiting for the network'
            return False
        self._pending_load = None
        try:
            ws = read_ws(path, num_ws=net.num_ws, w_dim=net.w_dim)
        except LatentFileError as e:
            self.w_status = str(e)
            logger.error('%s', e)
            return False
        self.loaded_ws = tuple(tuple(float(v) for v in row) for row in ws)
        self.loaded_from = path
        self._loaded_at = (self.x, self.y)
        self.w_status = f'Loaded {pathlib.Path(path).name} (change the seed to go back to seeds)'
        return True

    def set_loaded_ws(self, ws, name: str) -> None:
        """Makes ``ws`` ([num_ws, w_dim] or [1, num_ws, w_dim] floats, e.g. a projection's result) the loaded latent,
        as if it had been loaded from a file called ``name``."""
        arr = np.asarray(ws, dtype=np.float32)
        arr = arr[0] if arr.ndim == 3 else arr
        self.loaded_ws = tuple(tuple(float(v) for v in row) for row in arr)
        self.loaded_from = name
        self._loaded_at = (self.x, self.y)
        self._pending_load = None
        self.w_status = f'Using the {name} (change the seed to go back to seeds)'

    def clear_w(self, reason: str = '') -> None:
        """Back to the seed blend."""
        if self.loaded_ws is not None and reason:
            self.w_status = reason
        self.loaded_ws = None
        self.loaded_from = None
        self._loaded_at = None

    def save_w(self, path: str | os.PathLike | None = None) -> None:
        """Saves the ws of the next rendered frame to ``path`` (default ``w_file``) as `.npz` (key ``w``
        [1, num_ws, w_dim] float32, plus the producing request); an existing file is never overwritten: a free
        name ``<stem>-NNNN.npz`` is used instead."""
        self._pending_save = os.fspath(path if path is not None else self.w_file)
        self.w_status = 'Saving...'

    def _network_ready(self, result) -> bool:
        """Whether a waiting latent can be read for the shown network: one is shown and no other network load is in
        flight (or ``result`` is that load's answer)."""
        if self.net is None:
            return False
        pickle = getattr(self.viz, 'pickle', None)
        if pickle is None or not pickle.is_loading():
            return True
        return getattr(result, 'source', None) == pickle.pending and not getattr(result, 'load_failed', False)

    def on_result(self, result) -> None:
        if self._pending_load is not None and self._network_ready(result):
            self.load_w(self._pending_load)
        if self._pending_save is None or result.ws is None or result.error is not None:
            return
        request = self.view.request
        state = {'request': request.to_dict() if request is not None else None, 'written_by': 'sg3viz visualizer'}
        if state['request'] is not None:
            state['request'].pop('ws', None)  # the latent itself is the file's `w`
            state['request']['ws_from_file'] = self.loaded_from
        net = self.net
        if net is not None:
            state['network'] = {'pkl': net.pkl, 'num_ws': net.num_ws, 'w_dim': net.w_dim}
        try:
            written = write_ws(_free_path(self._pending_save), result.ws, state=state)
        except (OSError, ValueError) as e:
            self.w_status = f'Save W failed: {e}'
            logger.error('%s', self.w_status)
        else:
            self.w_status = f'Saved {written}'
            logger.info('saved latent %s', written)
        self._pending_save = None

    def reset(self) -> None:
        super().reset()
        self.clear_w()

    def validate(self) -> None:
        self.x = float(min(max(self.x, -GRID_LIMIT), GRID_LIMIT)) if math.isfinite(self.x) else 0.0
        self.y = float(min(max(self.y, -GRID_LIMIT), GRID_LIMIT)) if math.isfinite(self.y) else 0.0
        self.speed = float(min(max(self.speed, 0.0), 10.0))
        self.class_idx = int(self.class_idx) if self.class_idx is not None else -1
        self.w_file = self.w_file if isinstance(self.w_file, str) else 'latent.npz'

    def drag(self, dx_px: float, dy_px: float) -> None:
        """Moves the grid point by a mouse movement in pixels (used by the Drag button and dragging the image)."""
        k = DRAG_SEEDS_PER_FONT_PX / max(self.font_size, 1.0)
        self.x += dx_px * k
        self.y += dy_px * k

    def snap(self) -> None:
        self.x = float(round(self.x))
        self.y = float(round(self.y))

    def update_request(self, args, dt) -> None:
        if self.anim:
            self.x += dt * self.speed
        args['w0_seeds'] = seed_grid_weights(self.x, self.y)
        if self.loaded_ws is not None:
            net = self.net
            if self._loaded_at != (self.x, self.y):
                self.clear_w('Seed changed: back to the seed latent')
            elif net is not None and (net.num_ws, net.w_dim) != (len(self.loaded_ws), len(self.loaded_ws[0])):
                self.clear_w(f'The latent does not fit this network (num_ws={net.num_ws}, w_dim={net.w_dim}): cleared')
            else:
                args['ws'] = self.loaded_ws
        if self._pending_save is not None:
            args['return_ws'] = True
        c_dim = self.net.c_dim if self.net is not None else 0
        args['class_idx'] = None if self.class_idx < 0 or c_dim == 0 else min(self.class_idx, c_dim - 1)

    def draw(self) -> None:
        fs = self.font_size
        self.validate()
        sx, sy = math.floor(self.x), math.floor(self.y)
        # Negative grid points are legal (their seeds wrap to uint32 like the reference's); the field shows the seed.
        changed, new_seed = seed_field('Seed', grid_to_seed(sx, sy), fs * 6.5, self)
        if changed:
            gx, gy = seed_to_grid(new_seed)
            self.x, self.y = gx + (self.x - sx), gy + (self.y - sy)
            sx, sy = math.floor(self.x), math.floor(self.y)
        imgui.same_line()
        imgui.set_next_item_width(fs * 8)
        changed, xy = imgui.drag_float2('Offset', [self.x - sx, self.y - sy], 0.01, 0.0, 0.0, '%.3f')
        if changed and all(math.isfinite(v) for v in xy):
            self.x, self.y = sx + xy[0], sy + xy[1]
            self.validate()
        imgui.button('Drag')
        if imgui.is_item_active() and not imgui.is_item_activated():  # The press frame's delta is the approach.
            d = imgui.get_io().mouse_delta
            self.drag(d.x, d.y)
        if imgui.is_item_hovered():
            imgui.set_tooltip('Hold and move the mouse (or drag on the image) to move through the seed grid')
        imgui.same_line()
        _, self.anim = imgui.checkbox('Anim', self.anim)
        imgui.same_line()
        imgui.set_next_item_width(fs * 6)
        self.speed = edited(
            self.speed,
            imgui.drag_float('##speed', self.speed, 0.005, 0.0, 2.0, 'Speed %.2f', imgui.SliderFlags_.always_clamp),
        )
        imgui.same_line()
        if imgui.button('Snap'):
            self.snap()
        imgui.same_line()
        if imgui.button('Reset##latent'):
            self.reset()
        c_dim = self.net.c_dim if self.net is not None else 0
        if c_dim > 0:
            imgui.set_next_item_width(fs * 8)
            self.class_idx = int_field('Class (-1: per seed)', self.class_idx, -1, c_dim - 1)
        self._draw_latent_file()

    def _draw_latent_file(self) -> None:
        style = imgui.get_style()
        buttons = imgui.calc_text_size('Load W').x + imgui.calc_text_size('Save W').x
        imgui.set_next_item_width(-buttons - 4 * style.frame_padding.x - 2 * style.item_spacing.x)  # paths are long
        _, self.w_file = imgui.input_text('##wfile', self.w_file)
        if imgui.is_item_hovered():
            imgui.set_tooltip('Latent file: .npz/.npy with w or ws of [num_ws, w_dim], [1, num_ws, w_dim] or [w_dim]')
        imgui.same_line()
        if imgui.button('Load W'):
            self.load_w(self.w_file)
        imgui.same_line()
        if imgui.button('Save W'):
            self.save_w()
        if self.loaded_ws is not None:
            imgui.same_line()
            if imgui.button('Clear W'):
                self.clear_w('Back to the seed latent')
        imgui.text_disabled(self.w_status)  # Always one line: a status never moves the controls below.


def _free_path(path: str | os.PathLike) -> pathlib.Path:
    """`path` with an `.npz` suffix, or `<stem>-NNNN.npz` (first free number) when that file exists."""
    p = pathlib.Path(path)
    if p.suffix.lower() != '.npz':
        p = p.with_name(p.name + '.npz')
    if not p.exists():
        return p
    for i in range(1, 100000):
        q = p.with_name(f'{p.stem}-{i:04d}.npz')
        if not q.exists():
            return q
    raise OSError(f'no free file name like {p} (99999 taken)')
