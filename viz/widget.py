"""Base class of the visualizer's widgets: persistent state as plain attributes, pure request logic, thin drawing."""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from viz.frame_view import FrameView

if TYPE_CHECKING:
    from viz.visualizer import Visualizer

_EMPTY_VIEW = FrameView()

logger = logging.getLogger(__name__)


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
        """Clamps the state into its legal ranges (called after :meth:`set_state`)."""

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

    def update_request(self, args: dict[str, Any], dt: float) -> None:
        """Writes this widget's RenderRequest fields into ``args``; ``dt`` (seconds) advances animations."""

    def draw(self) -> None:
        """Draws the widget's controls (imgui calls only)."""
