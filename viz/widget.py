"""Base class of the visualizer's widgets: persistent state as plain attributes, pure request logic, thin drawing."""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from imgui_bundle import imgui

from engine.protocol import SEED_MAX, clamp_value
from viz.frame_view import FrameView

if TYPE_CHECKING:
    from viz.visualizer import Visualizer

_EMPTY_VIEW = FrameView()

logger = logging.getLogger(__name__)


_INT32_MAX = 2**31 - 1


def clamp(name: str, value, note_to: Widget | None = None):
    """``engine.protocol.clamp_value`` for widgets: the legal value; the note (if any) goes to ``note_to.notify``."""
    v, note = clamp_value(name, value)
    if note and note_to is not None:
        note_to.notify(note)
    return v


def parse_int(text: str) -> int | None:
    """An integer typed into a field ('12', ' -3 ', '1e3', '4294967296'), or None when it is not a number."""
    text = str(text).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
    except ValueError:
        return None
    return int(v) if v == v and abs(v) != float('inf') else None


def seed_field(label: str, seed: int, width: float, owner: Widget | None = None) -> tuple[bool, int]:
    """A seed entry (0 .. 2**32 - 1) with -/+ buttons that never crashes: ImGui's int fields hold only int32, so the
    seed is edited as text; what is typed beyond the range is clamped with a note (``owner.notify``), never wrapped.

    Returns:
        (changed, the new seed).
    """
    imgui.set_next_item_width(width)
    flags = imgui.InputTextFlags_.chars_decimal | imgui.InputTextFlags_.enter_returns_true
    entered, text = imgui.input_text(f'##{label}', str(int(seed)), flags)
    changed, value = False, int(seed)
    if entered or (imgui.is_item_deactivated_after_edit() and text != str(int(seed))):
        typed = parse_int(text)
        if typed is None:
            if owner is not None:
                owner.notify(f'{label}: {text!r} is not a whole number; kept {seed}')
        else:
            changed, value = True, int(clamp('seed', typed, owner))
    imgui.same_line(0, 2)
    if imgui.button(f'-##{label}'):
        changed, value = True, max(int(value) - 1, 0)
    imgui.same_line(0, 2)
    if imgui.button(f'+##{label}'):
        changed, value = True, min(int(value) + 1, SEED_MAX)
    imgui.same_line()
    imgui.text(label.split('##')[0])
    return changed, value


def int_field(label: str, value: int, lo: int, hi: int, step: int = 1, step_fast: int = 10) -> int:
    """``imgui.input_int`` that cannot crash or leave its range: the shown value is clamped into int32 and [lo, hi]
    first (ImGui's int fields are int32), and what the user types is clamped into [lo, hi]."""
    lo, hi = max(int(lo), -_INT32_MAX), min(int(hi), _INT32_MAX)
    shown = int(min(max(int(value), lo), hi))
    changed, v = imgui.input_int(label, shown, step, step_fast)
    return int(min(max(int(v), lo), hi)) if changed else shown


def edited(old, ret: tuple[bool, Any]):
    """``self.v = edited(self.v, imgui.slider_float(...))``: the new value only when the user changed it, so values
    set from scripts/sessions are not rounded to float32 by merely being displayed."""
    changed, value = ret
    return value if changed else old


class Widget:
    """One collapsible section of the control pane.

    Subclasses list their persistent attributes in ``STATE_KEYS`` (saved in sessions and capture sidecars, set by
    scripts), implement :meth:`update_request` (pure: read state, write RenderRequest fields into ``args``) and
    :meth:`draw` (thin imgui code). Widgets read the renderer's results only through :attr:`view` (one
    :class:`viz.frame_view.FrameView` per frame). ``viz`` may be None in unit tests; the view is then empty.

    Args:
        viz: the owning :class:`viz.visualizer.Visualizer` (or None in tests).
    """

    TITLE = 'Widget'
    KEY = 'widget'  # name in sessions / scripts
    STATE_KEYS: tuple[str, ...] = ()
    DEFAULT_OPEN = True

    def __init__(self, viz: Visualizer | None = None) -> None:
        self.viz = viz
        self.last_note: str | None = None

    # ---- state ------------------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """JSON-ready copy of the persistent state."""
        out = {}
        for k in self.STATE_KEYS:
            v = getattr(self, k)
            out[k] = list(v) if isinstance(v, tuple | set) else copy.deepcopy(v)
        return out

    def set_state(self, state: dict[str, Any]) -> None:
        """Updates the given keys (a partial dict is fine); unknown keys are ignored with a warning."""
        for k, v in state.items():
            if k not in self.STATE_KEYS:
                logger.warning('%s: ignoring unknown state key %r', type(self).__name__, k)
                continue
            cur = getattr(self, k)
            if isinstance(cur, bool) and v is not None:
                v = bool(v)
            elif isinstance(cur, float) and isinstance(v, int | float):
                v = float(v)
            elif isinstance(cur, list) and isinstance(v, list | tuple):
                v = list(v)
            setattr(self, k, v)
        self.validate()

    def validate(self) -> None:
        """Clamps the state into its legal ranges (after :meth:`set_state` and every frame before
        :meth:`update_request`; ranges from ``engine.protocol.REQUEST_LIMITS``)."""

    def notify(self, text: str) -> None:
        """Shows a short note to the user (over the image for a few seconds) and logs it."""
        self.last_note = text
        if self.viz is not None and hasattr(self.viz, 'notify'):
            self.viz.notify(text)  # Logs it too.
        else:
            logger.info('%s', text)

    def reset(self) -> None:
        """Back to the defaults (the Reset button)."""
        fresh = type(self)(None)
        for k in self.STATE_KEYS:
            setattr(self, k, copy.deepcopy(getattr(fresh, k)))

    # ---- per frame --------------------------------------------------------------------------------------------
    @property
    def view(self) -> FrameView:
        """This frame's view of the renderer's results (an empty view without an app)."""
        return _EMPTY_VIEW if self.viz is None else self.viz.view

    @property
    def net(self):
        """NetInfo of the displayed network, or None."""
        return self.view.net

    @property
    def font_size(self) -> float:
        return 14.0 if self.viz is None else self.viz.font_size

    def on_result(self, result) -> None:
        """Called once for each new RenderResult (before :meth:`update_request`)."""

    def on_job_update(self, update) -> None:
        """Called for each ``engine.jobs.JobUpdate`` of the render process's jobs (a widget checks ``job_id``)."""

    def update_request(self, args: dict[str, Any], dt: float) -> None:
        """Writes this widget's RenderRequest fields into ``args``; ``dt`` (seconds) advances animations."""

    def draw(self) -> None:
        """Draws the widget's controls (imgui calls only)."""
