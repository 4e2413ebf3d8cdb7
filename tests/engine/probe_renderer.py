"""A test-only renderer for ``AsyncRenderer(renderer='tests.engine.probe_renderer:ProbeRenderer')``.

It renders like ``engine.renderer.Renderer`` except for requests whose ``pkl`` is :data:`PROBE`: those are answered
with a JSON report about the worker (its loaded modules, niceness and torch thread count) in ``RenderResult.error``,
so tests can look inside the render process without a query message in the production protocol.
"""

from __future__ import annotations

import json
import os
import sys

from engine.protocol import RenderRequest, RenderResult
from engine.renderer import Renderer

PROBE = 'probe://worker-report'


class ProbeRenderer(Renderer):
    def try_render(self, req: RenderRequest) -> RenderResult | None:
        if req.pkl != PROBE:
            return super().try_render(req)
        import torch

        report = {
            'modules': sorted(sys.modules),
            'nice': os.nice(0) if hasattr(os, 'nice') else None,
            'num_threads': torch.get_num_threads(),
        }
        return RenderResult(stamp=req.stamp, error=json.dumps(report), source=req.pkl)


def probe(r, timeout_sec: float) -> dict:
    """Sends the probe request through an AsyncRenderer ``r`` and returns the worker's report."""
    import time

    stamp = r.set_request(RenderRequest(pkl=PROBE))
    deadline = time.monotonic() + timeout_sec
    while time.monotonic() < deadline:
        res = r.get_result()
        if res is not None and res.stamp >= stamp:
            return json.loads(res.error)
        time.sleep(0.01)
    raise AssertionError('no answer to the probe request')
