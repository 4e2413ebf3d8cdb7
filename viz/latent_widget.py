"""Latent widget: the seed-grid latent (REFERENCE section 6) with drag, animation, snap and a class picker."""

from __future__ import annotations

import math

from imgui_bundle import imgui

from viz.widget import Widget, edited, int_field, seed_field

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
    seed like the reference GUI, else the class index).
    """

    TITLE = 'Latent'
    KEY = 'latent'
    STATE_KEYS = ('x', 'y', 'anim', 'speed', 'class_idx')

    def __init__(self, viz=None) -> None:
        super().__init__(viz)
        self.x = 0.0
        self.y = 0.0
        self.anim = False
        self.speed = 0.25
        self.class_idx = -1

    def validate(self) -> None:
        self.x = float(min(max(self.x, -GRID_LIMIT), GRID_LIMIT)) if math.isfinite(self.x) else 0.0
        self.y = float(min(max(self.y, -GRID_LIMIT), GRID_LIMIT)) if math.isfinite(self.y) else 0.0
        self.speed = float(min(max(self.speed, 0.0), 10.0))
        self.class_idx = int(self.class_idx) if self.class_idx is not None else -1

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
