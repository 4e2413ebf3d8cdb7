"""Truncation / noise widget (docs/compatibility.md §6): psi -1..2, cutoff 0..num_ws, noise on/off and seed, Anim."""

from __future__ import annotations

from imgui_bundle import imgui

from engine.protocol import REQUEST_LIMITS, SEED_MAX
from viz.widget import Widget, clamp, edited, seed_field


def noise_mode_for(enabled: bool, seed: int) -> str:
    """Noise off -> 'none'; seed 0 -> 'const'; any other seed -> 'random' (seeded)."""
    if not enabled:
        return 'none'
    return 'const' if seed == 0 else 'random'


def cutoff_for_request(cutoff: int | None, num_ws: int | None) -> int | None:
    """RenderRequest.trunc_cutoff: None (all ws) when unset or >= num_ws, else clamped to 0..num_ws."""
    if cutoff is None:
        return None
    cutoff = max(int(cutoff), 0)
    if num_ws is not None and cutoff >= num_ws:
        return None
    return cutoff


class TruncNoiseWidget(Widget):
    """Truncation psi and cutoff; noise enable / seed / Anim (greyed when the net has no noise inputs).

    State: ``psi`` (-1..2, 1 = off), ``cutoff`` (None = all ws), ``noise_enable``, ``noise_seed``, ``noise_anim``.
    """

    TITLE = 'Truncation & noise'
    KEY = 'trunc_noise'
    STATE_KEYS = ('psi', 'cutoff', 'noise_enable', 'noise_seed', 'noise_anim')

    PSI_RANGE = REQUEST_LIMITS['trunc_psi']

    def __init__(self, viz=None) -> None:
        super().__init__(viz)
        self.psi = 1.0
        self.cutoff: int | None = None
        self.noise_enable = True
        self.noise_seed = 0
        self.noise_anim = False

    def validate(self) -> None:
        self.psi = float(clamp('trunc_psi', self.psi, self))
        self.cutoff = None if self.cutoff is None else int(clamp('trunc_cutoff', self.cutoff, self))
        self.noise_seed = int(clamp('noise_seed', self.noise_seed, self))

    def update_request(self, args, dt) -> None:
        has_noise = self.net is None or self.net.has_noise
        if self.noise_anim and self.noise_enable and has_noise:
            self.noise_seed = (self.noise_seed + 1) % (SEED_MAX + 1)
        num_ws = self.net.num_ws if self.net is not None else None
        args['trunc_psi'] = float(self.psi)
        args['trunc_cutoff'] = cutoff_for_request(self.cutoff, num_ws)
        args['noise_mode'] = noise_mode_for(self.noise_enable, self.noise_seed)
        args['noise_seed'] = int(self.noise_seed)

    def draw(self) -> None:
        fs = self.font_size
        num_ws = self.net.num_ws if self.net is not None else 16
        imgui.set_next_item_width(fs * 10)
        # Drags, not sliders: no grab handle over the number; always_clamp keeps Ctrl+click typing in range too.
        flags = imgui.SliderFlags_.always_clamp
        self.psi = edited(self.psi, imgui.drag_float('Truncate psi', self.psi, 0.005, *self.PSI_RANGE, '%.2f', flags))
        imgui.same_line()
        imgui.set_next_item_width(fs * 7)
        cut = num_ws if self.cutoff is None else min(self.cutoff, num_ws)
        changed, cut = imgui.drag_int('Cutoff', cut, 0.05, 0, num_ws, '%d', flags)
        if changed:
            self.cutoff = None if cut >= num_ws else cut
        has_noise = self.net is None or self.net.has_noise
        imgui.begin_disabled(not has_noise)
        _, self.noise_enable = imgui.checkbox('Noise', self.noise_enable)
        imgui.same_line()
        imgui.begin_disabled(not self.noise_enable)
        changed, s = seed_field('Noise seed', self.noise_seed, fs * 6.5, self)
        if changed:
            self.noise_seed = s
        imgui.same_line()
        _, self.noise_anim = imgui.checkbox('Anim##noise', self.noise_anim)
        imgui.end_disabled()
        imgui.end_disabled()
        if not has_noise and imgui.is_item_hovered(imgui.HoveredFlags_.allow_when_disabled):
            imgui.set_tooltip('This network has no noise inputs')
        imgui.same_line()
        if imgui.button('Reset##trunc'):
            self.reset()
