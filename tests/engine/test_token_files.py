"""engine.token_files: the server writes the token file, the visualizer reads it (one module for both sides)."""

from __future__ import annotations

import os
import stat

import pytest

from engine import remote_client, serve
from engine.token_files import read_token_file, write_token_file


def test_round_trip_owner_only(tmp_path):
    path = tmp_path / 'sub' / 'tok'
    write_token_file(str(path), 'abc123')
    assert read_token_file(path) == 'abc123' and serve.read_token(str(path)) == 'abc123'
    if os.name == 'posix':
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ['tok']  # no temporary file left
    write_token_file(str(path), 'new')  # replaced, not appended
    assert read_token_file(path) == 'new'


def test_missing_or_empty_file(tmp_path):
    (tmp_path / 'empty').write_text(' \n\n')
    for name, match in (('empty', 'is empty'), ('missing', 'cannot be read')):
        with pytest.raises(ValueError, match=match):
            read_token_file(tmp_path / name)
        assert serve.read_token(str(tmp_path / name)) is None  # --reuse-token: a fresh token then


def test_both_sides_use_the_one_reader():
    assert remote_client.read_token_file is read_token_file and serve.write_token_file is write_token_file
