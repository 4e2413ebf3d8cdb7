"""The interactive visualizer (Dear ImGui): ``viz.Visualizer`` and one module per widget. Never imports torch.

``Visualizer`` is imported lazily so that ``import viz.latent_widget`` (pure widget logic, unit tests) does not pull
in the window/OpenGL layer.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name == 'Visualizer':
        from viz.visualizer import Visualizer

        return Visualizer
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
