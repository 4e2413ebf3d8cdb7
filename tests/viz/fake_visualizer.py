"""``python tests/viz/fake_visualizer.py [visualizer options]``: the visualizer with the numpy stand-in renderer.

The real ``AsyncRenderer`` (render process, stamps, restart) runs ``tests.viz.fake_renderer.FakeRenderer`` instead
of the torch renderer; everything else is ``visualizer.py`` unchanged (same options).
"""

from __future__ import annotations

import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def fake_renderer_factory(device: str, separate_process: bool):
    from engine.async_renderer import AsyncRenderer

    return AsyncRenderer(
        device=device, separate_process=separate_process, renderer='tests.viz.fake_renderer:FakeRenderer'
    )


if __name__ == '__main__':
    import importlib.util

    spec = importlib.util.spec_from_file_location('visualizer_cli', REPO / 'visualizer.py')
    assert spec is not None and spec.loader is not None
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    cli.main(obj={'renderer_factory': fake_renderer_factory})
