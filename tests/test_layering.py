"""Import each package in a fresh interpreter and check the forbidden modules stay out (HOUSE_STYLE layout)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

GUI_MODULES = ['imgui_bundle', 'glfw', 'OpenGL']
RULES = {
    'viz': ['torch'],
    'gui_utils': ['torch'],
    'engine': GUI_MODULES,
    'training': ['engine', 'viz', 'gui_utils'] + GUI_MODULES,
    'torch_utils': ['engine', 'viz', 'gui_utils', 'training'] + GUI_MODULES,
}


def _submodules(package: str) -> list[str]:
    root = REPO / package
    return sorted(
        f'{package}.{p.stem}' if p.stem != '__init__' else package
        for p in root.glob('*.py')
        if not p.stem.startswith('_') or p.stem == '__init__'
    )


@pytest.mark.parametrize('package', sorted(RULES))
def test_package_imports_stay_in_layer(package):
    if not (REPO / package / '__init__.py').is_file():
        pytest.skip(f'{package} does not exist yet')
    modules = _submodules(package)
    code = (
        'import importlib, json, sys\n'
        f'sys.path.insert(0, {str(REPO)!r})\n'
        f'for name in {modules!r}:\n'
        '    importlib.import_module(name)\n'
        'print(json.dumps(sorted(sys.modules)))\n'
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    bad = sorted({m for m in loaded for f in RULES[package] if m == f or m.startswith(f + '.')})
    assert not bad, f'importing {modules} loads forbidden modules {bad}'
