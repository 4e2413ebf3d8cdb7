"""Equivariance widget: translate / rotate the SG3 input, Anim, whole pixels, untransform (compatibility.md §3, §6)."""

from __future__ import annotations

import math

from imgui_bundle import imgui

from engine.latents import make_transform
from viz.widget import Widget, edited

DRAG_FAST = 1e-2  # translation per font-size of mouse travel (image spans 1)
DRAG_SLOW = 4e-4
DRAG_ROTATE = 2e-2  # turns per font-size of mouse travel
XLATE_LIMIT = 1e3  # |translation| (image widths) beyond this is clamped
ROTATE_LIMIT_TURNS = 1e6


def make_input_transform(tx: float, ty: float, rotate_turns: float) -> tuple[tuple[float, float, float], ...]:
    """The user's 3x3 transform (docs/compatibility.md §3): ``[[cos a, sin a, tx], [-sin a, cos a, ty], [0, 0, 1]]``.

    Args:
        tx, ty: translation in units where the image spans 1.
        rotate_turns: rotation in turns (1 turn = 2*pi radians); ``a = 2 * pi * rotate_turns``.

    Returns:
        Row-major 3x3 tuple (RenderRequest.input_transform); the renderer feeds the synthesis input its inverse.
    """
    m = make_transform((tx, ty), 360.0 * float(rotate_turns))
    return tuple(tuple(float(v) for v in row) for row in m)


def round_to_pixels(v: float, img_resolution: int) -> float:
    """Rounds a translation (image spans 1) to whole output pixels."""
    return round(v * img_resolution) / img_resolution


def advance_translate(x: float, y: float, dt: float, speed: float) -> tuple[float, float]:
    """Translation animation: moves (x, y) along a circle around the origin at ``speed`` (image widths per second).

    A point at the origin starts on a circle of radius 0.1.
    """
    r = math.hypot(x, y)
    if r < 1e-4:
        x, y, r = 0.1, 0.0, 0.1
    a = math.atan2(y, x) + dt * speed / r
    return r * math.cos(a), r * math.sin(a)


class EquivarianceWidget(Widget):
    """Translate (drag fast/slow, Anim, Round to pixels, speed), rotate (drag, Anim, speed), Untransform.

    Greyed out when the network has no input transform (StyleGAN2). State: ``xlate_x, xlate_y`` (image spans 1),
    ``xlate_anim, xlate_round, xlate_speed``, ``rotate`` (turns), ``rotate_anim, rotate_speed``, ``untransform``.
    """

    TITLE = 'Equivariance'
    KEY = 'equivariance'
    STATE_KEYS = (
        'xlate_x',
        'xlate_y',
        'xlate_anim',
        'xlate_round',
        'xlate_speed',
        'rotate',
        'rotate_anim',
        'rotate_speed',
        'untransform',
    )
    DEFAULT_OPEN = False

    def __init__(self, viz=None) -> None:
        super().__init__(viz)
        self.xlate_x = 0.0
        self.xlate_y = 0.0
        self.xlate_anim = False
        self.xlate_round = False
        self.xlate_speed = 1e-2
        self.rotate = 0.0
        self.rotate_anim = False
        self.rotate_speed = 1e-2
        self.untransform = False

    def validate(self) -> None:
        def finite(v: float, lo: float, hi: float) -> float:
            return float(min(max(v, lo), hi)) if math.isfinite(v) else 0.0

        self.xlate_x = finite(self.xlate_x, -XLATE_LIMIT, XLATE_LIMIT)
        self.xlate_y = finite(self.xlate_y, -XLATE_LIMIT, XLATE_LIMIT)
        self.rotate = finite(self.rotate, -ROTATE_LIMIT_TURNS, ROTATE_LIMIT_TURNS)
        self.xlate_speed = finite(self.xlate_speed, 0.0, 0.5)
        self.rotate_speed = finite(self.rotate_speed, 0.0, 0.5)

    def enabled(self) -> bool:
        return self.net is not None and self.net.has_input_transform

    def transform(self) -> tuple[tuple[float, float, float], ...] | None:
        """The request's input_transform (None when disabled or identity)."""
        if not self.enabled():
            return None
        tx, ty = self.xlate_x, self.xlate_y
        if self.xlate_round:
            res = self.net.img_resolution
            tx, ty = round_to_pixels(tx, res), round_to_pixels(ty, res)
        if tx == 0 and ty == 0 and self.rotate % 1.0 == 0:
            return None
        return make_input_transform(tx, ty, self.rotate)

    def update_request(self, args, dt) -> None:
        if self.enabled():
            if self.xlate_anim:
                self.xlate_x, self.xlate_y = advance_translate(self.xlate_x, self.xlate_y, dt, self.xlate_speed)
            if self.rotate_anim:
                self.rotate += dt * self.rotate_speed
        args['input_transform'] = self.transform()
        args['untransform'] = bool(self.untransform and self.enabled())

    def _drag_button(self, label: str, per_font_px: float, axis2: bool) -> None:
        imgui.button(label)
        if imgui.is_item_active() and not imgui.is_item_activated():  # The press frame's delta is the approach.
            d = imgui.get_io().mouse_delta
            k = per_font_px / max(self.font_size, 1.0)
            if axis2:
                self.xlate_x += d.x * k
                self.xlate_y += d.y * k
            else:
                self.rotate += d.x * k

    def draw(self) -> None:
        fs = self.font_size
        imgui.begin_disabled(not self.enabled())
        imgui.set_next_item_width(fs * 10)
        changed, xy = imgui.drag_float2('Translate', [self.xlate_x, self.xlate_y], 1e-3, -1.0, 1.0, '%.4f')
        if changed:
            self.xlate_x, self.xlate_y = xy
            self.validate()
        imgui.same_line()
        self._drag_button('Drag fast##xlate', DRAG_FAST, True)
        imgui.same_line()
        self._drag_button('Drag slow##xlate', DRAG_SLOW, True)
        _, self.xlate_anim = imgui.checkbox('Anim##xlate', self.xlate_anim)
        imgui.same_line()
        _, self.xlate_round = imgui.checkbox('Round to pixels', self.xlate_round)
        imgui.same_line()
        imgui.set_next_item_width(fs * 6)
        self.xlate_speed = edited(
            self.xlate_speed,
            imgui.drag_float(
                '##xlate_speed', self.xlate_speed, 5e-4, 0.0, 0.5, 'Speed %.3f', imgui.SliderFlags_.always_clamp
            ),
        )
        imgui.set_next_item_width(fs * 10)
        self.rotate = edited(self.rotate, imgui.drag_float('Rotate (turns)', self.rotate, 1e-3, -10.0, 10.0, '%.4f'))
        imgui.same_line()
        self._drag_button('Drag##rotate', DRAG_ROTATE, False)
        _, self.rotate_anim = imgui.checkbox('Anim##rotate', self.rotate_anim)
        imgui.same_line()
        imgui.set_next_item_width(fs * 6)
        self.rotate_speed = edited(
            self.rotate_speed,
            imgui.drag_float(
                '##rotate_speed', self.rotate_speed, 5e-4, 0.0, 0.5, 'Speed %.3f', imgui.SliderFlags_.always_clamp
            ),
        )
        _, self.untransform = imgui.checkbox('Untransform', self.untransform)
        imgui.same_line()
        if imgui.button('Reset##eq'):
            self.reset()
        imgui.end_disabled()
        if not self.enabled():
            imgui.text_disabled('The network has no input transform (StyleGAN2).')
