"""engine.atomic_files: a file appears whole under its name or not at all, and no temporary is left behind."""

from __future__ import annotations

import pytest

from engine.atomic_files import atomic_path, atomic_write_bytes, default_mode


def test_success_renames_into_place_with_the_mode(tmp_path):
    out = tmp_path / 'sub' / 'a.bin'
    assert atomic_write_bytes(out, b'new') == out
    assert out.read_bytes() == b'new' and out.stat().st_mode & 0o777 == default_mode()
    with atomic_path(out, mode=0o600) as tmp:
        assert tmp.parent == out.parent and tmp != out and tmp.exists()
        tmp.write_bytes(b'newer')
        assert out.read_bytes() == b'new'  # the old content stays until the block ends
    assert out.read_bytes() == b'newer' and out.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in out.parent.iterdir()) == ['a.bin']


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    out = tmp_path / 'a.bin'
    out.write_bytes(b'old')
    with pytest.raises(RuntimeError, match='disk full'), atomic_path(out, suffix='.part') as tmp:
        tmp.write_bytes(b'half')
        raise RuntimeError('disk full')
    assert out.read_bytes() == b'old'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.bin']
