"""torch_utils.persistence: reference pickle format (docs/compatibility.md §1), round trips in fresh processes."""

from __future__ import annotations

import importlib.util
import io
import pathlib
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

from torch_utils import persistence

REPO = pathlib.Path(__file__).resolve().parents[2]

MODULE_SRC = textwrap.dedent(
    """
    import torch
    from torch_utils import persistence

    @persistence.persistent_class
    class Tiny(torch.nn.Module):
        def __init__(self, num_features, scale=1.0, extra=None):
            super().__init__()
            self.fc = torch.nn.Linear(num_features, num_features)
            self.scale = scale
            self.register_buffer('offset', torch.arange(num_features, dtype=torch.float32))

        def forward(self, x):
            return self.fc(x) * self.scale + self.offset
    """
)


def _run(code: str, cwd: pathlib.Path) -> str:
    paths = [str(REPO)]
    prelude = f'import sys; sys.path[:0] = {paths!r}\n'
    result = subprocess.run(
        [sys.executable, '-c', prelude + textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _meta_of(pkl: bytes) -> dict:
    """Reads the persistent object's meta without executing anything."""
    globals_seen = []

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            globals_seen.append(f'{module}.{name}')
            if (module, name) == ('torch_utils.persistence', '_reconstruct_persistent_obj'):
                return lambda meta: meta
            return super().find_class(module, name)

    meta = Recorder(io.BytesIO(pkl)).load()
    assert globals_seen[0] == 'torch_utils.persistence._reconstruct_persistent_obj'
    return meta


def _import_from(path: pathlib.Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_round_trip_in_fresh_process_carries_source(tmp_path):
    """Pickle here, delete the defining module, load in a fresh interpreter: the pickle carries its source."""
    mod_path = tmp_path / 'tiny_persistent_mod.py'
    mod_path.write_text(MODULE_SRC)
    m = _import_from(mod_path, 'tiny_persistent_mod')
    try:
        torch.manual_seed(0)
        net = m.Tiny(3, scale=2.0, extra={'a': [1, 2]})
        with torch.no_grad():
            y = net(torch.ones(1, 3))
        pkl_path = tmp_path / 'tiny.pkl'
        pkl_path.write_bytes(pickle.dumps({'net': net, 'y': y, 'pair': [m.Tiny(2), m.Tiny(4)]}))
    finally:
        del sys.modules['tiny_persistent_mod']
    mod_path.unlink()  # the pickle must not need the module file any more

    meta = _meta_of_top(pkl_path.read_bytes())
    assert meta['type'] == 'class'
    assert meta['version'] == 6
    assert meta['class_name'] == 'Tiny'
    assert meta['module_src'] == MODULE_SRC
    state = meta['state']
    assert state['_init_args'] == (3,)
    assert state['_init_kwargs'] == {'scale': 2.0, 'extra': {'a': [1, 2]}}
    assert {'_parameters', '_buffers', '_modules', 'training', 'scale'} <= set(state)

    out = _run(
        f"""
        import pickle, torch
        from torch_utils import persistence
        data = pickle.load(open({str(pkl_path)!r}, 'rb'))
        net = data['net']
        assert persistence.is_persistent(net), type(net)
        assert type(net).__module__.startswith('_imported_module_'), type(net).__module__
        assert net.init_args == (3,) and net.init_kwargs == {{'scale': 2.0, 'extra': {{'a': [1, 2]}}}}
        with torch.no_grad():
            assert torch.equal(net(torch.ones(1, 3)), data['y'])
        # Identical sources are executed once.
        again = pickle.load(open({str(pkl_path)!r}, 'rb'))
        assert type(again['net']) is type(net) is type(data['pair'][0]) is type(again['pair'][1])

        # Import hooks see (and may patch) meta before loading.
        seen = []
        @persistence.import_hook
        def hook(meta):
            seen.append(meta.class_name)
            meta.state.scale = 5.0
            return meta
        patched = pickle.load(open({str(pkl_path)!r}, 'rb'))
        assert seen == ['Tiny', 'Tiny', 'Tiny'] and patched['net'].scale == 5.0, seen

        # The format version is checked.
        @persistence.import_hook
        def bad_version(meta):
            meta.version = 5
            return meta
        try:
            pickle.load(open({str(pkl_path)!r}, 'rb'))
        except ValueError as e:
            print('REFUSED', e)
        print('OK')
        """,
        tmp_path,
    )
    assert 'REFUSED' in out and 'version' in out
    assert out.strip().endswith('OK')


def _meta_of_top(pkl: bytes) -> dict:
    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ('torch_utils.persistence', '_reconstruct_persistent_obj'):
                return lambda meta: meta
            return super().find_class(module, name)

    return Recorder(io.BytesIO(pkl)).load()['net']


def test_reduce_uses_reference_global():
    from training.networks_stylegan3 import FullyConnectedLayer  # any persistent class of ours

    layer = FullyConnectedLayer(4, 5)
    meta = _meta_of(pickle.dumps(layer))
    assert set(meta) == {'type', 'version', 'module_src', 'class_name', 'state'}
    assert meta['class_name'] == 'FullyConnectedLayer'
    assert 'class FullyConnectedLayer' in meta['module_src']
    assert layer.init_args == (4, 5)


def test_init_args_are_deep_copies():
    from training.networks_stylegan3 import MappingNetwork

    kwargs = dict(z_dim=8, c_dim=0, w_dim=8, num_ws=2, num_layers=1)
    net = MappingNetwork(**kwargs)
    got = net.init_kwargs
    got['z_dim'] = 99
    assert net.init_kwargs['z_dim'] == 8


def test_is_persistent_and_idempotent_decorator():
    class Plain(torch.nn.Module):
        pass

    assert not persistence.is_persistent(Plain)
    assert not persistence.is_persistent(Plain())
    assert not persistence.is_persistent([])  # unhashable
    from training.networks_stylegan3 import FullyConnectedLayer

    assert persistence.is_persistent(FullyConnectedLayer)
    assert persistence.persistent_class(FullyConnectedLayer) is FullyConnectedLayer
    with pytest.raises(TypeError, match='must be a class'):
        persistence.persistent_class(42)
