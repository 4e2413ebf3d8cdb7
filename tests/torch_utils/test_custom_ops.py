"""torch_utils.custom_ops: cache keys, build lock, failure messages, corrupted-cache rebuild (monkeypatched builds;
one real tiny C++ build marked slow)."""

from __future__ import annotations

import os
import pathlib
import types

import pytest

from torch_utils import custom_ops


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Own extension root and empty memo tables for every test."""
    monkeypatch.setenv('TORCH_EXTENSIONS_DIR', str(tmp_path / 'ext'))
    monkeypatch.setattr(custom_ops, '_plugins', {})
    monkeypatch.setattr(custom_ops, '_failures', {})


def _source(tmp_path: pathlib.Path, text: str = 'int x = 1;\n') -> pathlib.Path:
    src = tmp_path / 'plug.cpp'
    src.write_text(text)
    return src


def test_cache_root_honours_env(tmp_path):
    assert custom_ops.cache_root() == tmp_path / 'ext'


def test_build_key_depends_on_sources_torch_and_cuda_arch(tmp_path, monkeypatch):
    import torch

    src = _source(tmp_path)
    k0 = custom_ops.build_key([src], {})
    assert k0 == custom_ops.build_key([src], {}) and len(k0) == 16
    assert custom_ops.build_key([src], {'extra_cflags': ['-O2']}) != k0
    monkeypatch.setattr(torch, '__version__', '0.0.0-test')
    assert custom_ops.build_key([src], {}) != k0
    monkeypatch.undo()
    monkeypatch.setenv('TORCH_EXTENSIONS_DIR', str(tmp_path / 'ext'))
    src.write_text('int x = 2;\n')
    assert custom_ops.build_key([src], {}) != k0
    monkeypatch.setenv('TORCH_CUDA_ARCH_LIST', '8.0')
    k_80 = custom_ops.build_key([src], {}, cuda=True)
    monkeypatch.setenv('TORCH_CUDA_ARCH_LIST', '8.6')
    assert custom_ops.build_key([src], {}, cuda=True) != k_80
    assert custom_ops.build_key([src], {}, cuda=False) == custom_ops.build_key([src], {}, cuda=False)


def test_stale_lock_of_dead_process_is_taken_over(tmp_path):
    lock = tmp_path / custom_ops.LOCK_NAME
    import socket

    lock.write_text(f'999999999 {socket.gethostname()} 0\n')  # no such pid
    with custom_ops.build_lock(tmp_path, timeout=2):
        assert lock.read_text().startswith(f'{os.getpid()} ')
    assert not lock.exists()


def test_old_lock_is_taken_over(tmp_path):
    lock = tmp_path / custom_ops.LOCK_NAME
    lock.write_text(f'{os.getpid()} other-host 0\n')
    old = os.stat(lock).st_mtime - 3600
    os.utime(lock, (old, old))
    with custom_ops.build_lock(tmp_path, timeout=2, stale_after=60):
        pass
    assert not lock.exists()


def test_live_lock_times_out_with_clear_message(tmp_path):
    import socket

    lock = tmp_path / custom_ops.LOCK_NAME
    lock.write_text(f'{os.getpid()} {socket.gethostname()} 0\n')  # held by a live process (us)
    with pytest.raises(TimeoutError, match='build lock .* held by another process'):
        with custom_ops.build_lock(tmp_path, timeout=0.3, poll=0.05):
            pass
    assert lock.exists()


def test_lock_timeout_in_get_plugin_names_the_log(tmp_path, monkeypatch):
    import socket

    src = _source(tmp_path)
    key = custom_ops.build_key([src.resolve()], {})
    build_dir = custom_ops.cache_root() / f'plug-{key}'
    build_dir.mkdir(parents=True)
    (build_dir / custom_ops.LOCK_NAME).write_text(f'{os.getpid()} {socket.gethostname()} 0\n')
    monkeypatch.setattr(custom_ops, 'find_compiler', lambda: '/usr/bin/c++')
    monkeypatch.setattr('torch.utils.cpp_extension.verify_ninja_availability', lambda: None)
    with pytest.raises(custom_ops.PluginBuildError, match='build.log') as info:
        custom_ops.get_plugin('plug', [src.name], source_dir=tmp_path, lock_timeout=0.2)
    assert info.value.log_path == build_dir / 'build.log' and info.value.log_path.is_file()


def test_missing_compiler_is_a_clear_error_and_remembered(tmp_path, monkeypatch):
    src = _source(tmp_path)
    monkeypatch.setattr(custom_ops, 'find_compiler', lambda: None)
    env_before = dict(os.environ)
    with pytest.raises(custom_ops.PluginBuildError, match='no C\\+\\+ compiler.*see the build log') as info:
        custom_ops.get_plugin('plug', [src.name], source_dir=tmp_path)
    assert 'compiler' in info.value.log_path.read_text()
    monkeypatch.setattr(custom_ops, 'find_compiler', lambda: pytest.fail('retried a remembered failure'))
    with pytest.raises(custom_ops.PluginBuildError):
        custom_ops.get_plugin('plug', [src.name], source_dir=tmp_path)
    assert dict(os.environ) == env_before


def test_build_failure_names_the_log(tmp_path, monkeypatch):
    src = _source(tmp_path)
    monkeypatch.setattr(custom_ops, 'find_compiler', lambda: '/usr/bin/c++')
    monkeypatch.setattr('torch.utils.cpp_extension.verify_ninja_availability', lambda: None)

    def failing_load(**kwargs):
        raise RuntimeError('Error building extension: plug.cpp:1: error: expected ;')

    monkeypatch.setattr('torch.utils.cpp_extension.load', failing_load)
    with pytest.raises(custom_ops.PluginBuildError, match='building plug failed.*build.log') as info:
        custom_ops.get_plugin('plug', [src.name], source_dir=tmp_path)
    assert 'expected ;' in info.value.log_path.read_text()


def test_corrupted_cache_is_rebuilt(tmp_path, monkeypatch):
    src = _source(tmp_path)
    monkeypatch.setattr(custom_ops, 'find_compiler', lambda: '/usr/bin/c++')
    monkeypatch.setattr('torch.utils.cpp_extension.verify_ninja_availability', lambda: None)
    calls = []
    module = types.ModuleType('plug_built')

    def load(name, sources, build_directory, **kwargs):
        calls.append(sorted(p.name for p in pathlib.Path(build_directory).iterdir()))
        if len(calls) == 1:
            (pathlib.Path(build_directory) / f'{name}.so').write_bytes(b'garbage')
            (pathlib.Path(build_directory) / 'lock').write_text('')  # torch's baton, stale
            raise ImportError('invalid ELF header')
        return module

    monkeypatch.setattr('torch.utils.cpp_extension.load', load)
    assert custom_ops.get_plugin('plug', [src.name], source_dir=tmp_path) is module
    assert len(calls) == 2
    assert calls[1] == [custom_ops.LOCK_NAME]  # the corrupted files were removed before the rebuild
    assert custom_ops.get_plugin('plug', [src.name], source_dir=tmp_path) is module  # memoised
    assert len(calls) == 2


def test_stale_torch_baton_is_removed(tmp_path, monkeypatch):
    src = _source(tmp_path)
    monkeypatch.setattr(custom_ops, 'find_compiler', lambda: '/usr/bin/c++')
    monkeypatch.setattr('torch.utils.cpp_extension.verify_ninja_availability', lambda: None)
    key = custom_ops.build_key([src.resolve()], {})
    build_dir = custom_ops.cache_root() / f'plug-{key}'
    build_dir.mkdir(parents=True)
    (build_dir / 'lock').write_text('')  # left by a killed torch build: would make torch wait forever

    def load(name, sources, build_directory, **kwargs):
        assert not (pathlib.Path(build_directory) / 'lock').exists()
        return types.ModuleType(name)

    monkeypatch.setattr('torch.utils.cpp_extension.load', load)
    assert custom_ops.get_plugin('plug', [src.name], source_dir=tmp_path).__name__ == f'plug_{key}'


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match='identifier'):
        custom_ops.get_plugin('bad name', sources=['x.cpp'])
    with pytest.raises(ValueError, match='missing'):
        custom_ops.get_plugin('plug', sources=['nope.cpp'], source_dir=tmp_path)
    with pytest.raises(ValueError, match='no sources'):
        custom_ops.get_plugin('plug', sources=[], source_dir=tmp_path)


@pytest.mark.slow
def test_real_tiny_build(tmp_path):
    """Compiles a pybind11-only module with the real toolchain (~10 s); skipped without a compiler/ninja."""
    import shutil

    if custom_ops.find_compiler() is None or shutil.which('ninja') is None:
        pytest.skip('no C++ compiler or ninja')
    src = _source(
        tmp_path,
        '#include <pybind11/pybind11.h>\nint add(int a, int b) { return a + b; }\n'
        'PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("add", &add); }\n',
    )
    module = custom_ops.get_plugin('tiny_plug', [src.name], source_dir=tmp_path)
    assert module.add(2, 3) == 5
    log = next((tmp_path / 'ext').glob('tiny_plug-*/build.log'))
    assert 'succeeded' in log.read_text()
