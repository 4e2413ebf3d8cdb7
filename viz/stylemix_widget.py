"""Stylemix widget: replace chosen ws with those of a second seed (docs/compatibility.md §6)."""

from __future__ import annotations

import math

from imgui_bundle import imgui

from engine.protocol import SEED_MAX
from viz.widget import Widget, clamp, edited, seed_field


def stylemix_indices(enabled: list[bool], num_ws: int) -> tuple[int, ...]:
    """Indices of the ticked ws that exist in a network with ``num_ws`` ws (RenderRequest.stylemix_idx)."""
    return tuple(i for i, on in enumerate(enabled[:num_ws]) if on)


class StylemixWidget(Widget):
    """Second seed, Anim (walks the second seed), one toggle per w, Reset.

    State: ``seed`` (float; the integer part is the second seed), ``anim``, ``speed`` (seeds per second),
    ``enabled`` (one bool per w, grown to the network's num_ws), ``weight`` (0..1: how far the ticked ws move toward
    the second seed's; 1 replaces them like the reference, ``RenderRequest.stylemix_weight``).
    """

    TITLE = 'Stylemix'
    KEY = 'stylemix'
    STATE_KEYS = ('seed', 'anim', 'speed', 'enabled', 'weight')

    def __init__(self, viz=None) -> None:
        super().__init__(viz)
        self.seed = 0.0
        self.anim = False
        self.speed = 0.5
        self.enabled: list[bool] = []
        self.weight = 1.0

    def validate(self) -> None:
        self.seed = float(min(max(self.seed, 0.0), SEED_MAX)) if math.isfinite(self.seed) else 0.0
        self.enabled = [bool(v) for v in self.enabled]
        self.weight = float(clamp('stylemix_weight', self.weight, self))

    def _num_ws(self) -> int:
        return self.net.num_ws if self.net is not None else len(self.enabled)

    def update_request(self, args, dt) -> None:
        if self.anim:
            self.seed += dt * self.speed
        num_ws = self._num_ws()
        if len(self.enabled) < num_ws:
            self.enabled += [False] * (num_ws - len(self.enabled))
        idx = stylemix_indices(self.enabled, num_ws)
        args['stylemix_idx'] = idx
        args['stylemix_seed'] = int(self.seed) % (SEED_MAX + 1) if idx else 0  # Anim walks past the end: wrap.
        args['stylemix_weight'] = float(self.weight) if idx else 1.0

    def draw(self) -> None:
        fs = self.font_size
        num_ws = self._num_ws()
        self.validate()
        changed, s = seed_field('Seed##stylemix', int(self.seed) % (SEED_MAX + 1), fs * 6.5, self)
        if changed:
            self.seed = float(s)
        imgui.same_line()
        _, self.anim = imgui.checkbox('Anim##stylemix', self.anim)
        imgui.same_line()
        if imgui.button('All##stylemix'):
            self.enabled = [True] * num_ws
        imgui.same_line()
        if imgui.button('None##stylemix'):
            self.enabled = [False] * num_ws
        imgui.same_line()
        if imgui.button('Reset##stylemix'):
            self.reset()
        if len(self.enabled) < num_ws:
            self.enabled += [False] * (num_ws - len(self.enabled))
        imgui.text_disabled('Replace ws:')
        imgui.same_line()
        # No vertical frame padding: the weight fits the text line, so nothing below moves.
        imgui.push_style_var(imgui.StyleVar_.frame_padding, imgui.ImVec2(imgui.get_style().frame_padding.x, 0))
        imgui.set_next_item_width(fs * 7)
        flags = imgui.SliderFlags_.always_clamp
        self.weight = edited(
            self.weight, imgui.drag_float('##mixweight', self.weight, 0.005, 0.0, 1.0, 'weight %.2f', flags)
        )
        imgui.pop_style_var()
        if imgui.is_item_hovered():
            imgui.set_tooltip("How far the ticked ws move toward the second seed's: 1 replaces them, 0 keeps them")
        for i in range(num_ws):
            if i % 8:
                imgui.same_line()
            _, self.enabled[i] = imgui.checkbox(f'{i}##ws{i}', self.enabled[i])
            if imgui.is_item_hovered():
                imgui.set_tooltip(f"Replace w[{i}] with the second seed's")
