"""One per-frame view of the renderer's results: what widgets and the image area read (never ``RenderResult``s or
app attributes directly).

The app folds every new :class:`engine.protocol.RenderResult` into a new immutable :class:`FrameView` together
with the request that produced it (``AsyncRenderer.set_request`` returns each request's stamp; the app remembers
stamp -> request). Error results keep the last image, network, layers and stats on screen, so a failed load or a
bad request never blanks the view.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from engine.protocol import LayerInfo, NetInfo, RenderRequest, RenderResult


@dataclass(frozen=True)
class FrameView:
    """What the GUI shows this frame.

    Attributes:
        result: the newest result (None before the first).
        request: the request ``result`` answers (None when unknown, e.g. a crash notice).
        net: the newest network a result reported (kept across error results).
        layers: the layer list of the newest result that had one.
        stats: the stats of the newest result that had them (see ``RenderResult.stats``).
        image: the newest image, uint8 [H, W, 3] (kept across error results).
        image_result: the result that carried ``image``.
        image_request: the request that produced ``image`` and ``fft`` (captions, capture sidecars).
        fft: the FFT view that came with ``image`` (None when that request did not ask for one).
        error: the newest result's error (None when it succeeded).
    """

    result: RenderResult | None = None
    request: RenderRequest | None = None
    net: NetInfo | None = None
    layers: tuple[LayerInfo, ...] = ()
    stats: dict = field(default_factory=dict)
    image: np.ndarray | None = None
    image_result: RenderResult | None = None
    image_request: RenderRequest | None = None
    fft: np.ndarray | None = None
    error: str | None = None

    @property
    def displayed_stamp(self) -> int:
        """Stamp of the newest result (-1 before the first)."""
        return self.result.stamp if self.result is not None else -1

    def advance(self, result: RenderResult, request: RenderRequest | None) -> FrameView:
        """The view after ``result`` (answering ``request``) arrived. Pure: returns a new view."""
        changes: dict = {'result': result, 'request': request, 'error': result.error}
        if result.net is not None:
            changes['net'] = result.net
        if result.layers:
            changes['layers'] = tuple(result.layers)
        if result.stats:
            changes['stats'] = dict(result.stats)
        if result.image is not None:
            changes.update(image=result.image, image_result=result, image_request=request, fft=result.fft)
        return dataclasses.replace(self, **changes)
