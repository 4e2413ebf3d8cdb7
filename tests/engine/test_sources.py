"""engine.sources: what a network source is, how it is shown, newest-first snapshot order; torch-free."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine import sources


def _touch(path, mtime_sec: float):
    path.write_bytes(b'x')
    os.utime(path, (mtime_sec, mtime_sec))
    return path


def test_parse_source_kinds(tmp_path):
    assert sources.parse_source(None).kind == 'default' and sources.parse_source('  ').kind == 'default'
    assert sources.parse_source('https://x.org/a.pkl').kind == 'url'
    assert sources.parse_source('https://x.org/a.pkl').is_download
    assert sources.parse_source(f'file://{tmp_path}/a.pkl').kind == 'file_url'
    assert sources.parse_source(str(tmp_path)).kind == 'run_dir'
    assert sources.parse_source('nothing/here.pkl').kind == 'path'
    with pytest.raises(sources.SourceError, match='unsupported URL scheme'):
        sources.parse_source('ftp://x.org/a.pkl')
    assert sources.display_name(None) == 'bundled default network' and sources.display_name(' a.pkl ') == 'a.pkl'


def test_snapshots_newest_first(tmp_path):
    run = tmp_path / 'run'
    run.mkdir()
    _touch(run / 'network-snapshot-000040.pkl', 100)
    _touch(run / 'network-snapshot-000200.pkl', 50)  # higher kimg wins over a newer mtime
    _touch(run / 'network-snapshot-000080.pkl', 300)
    _touch(run / 'other.pkl', 400)
    names = [p.name for p in sources.list_snapshots(run)]
    assert names == [
        'network-snapshot-000200.pkl',
        'network-snapshot-000080.pkl',
        'network-snapshot-000040.pkl',
        'other.pkl',
    ]
    assert sources.newest_snapshot(run).name == 'network-snapshot-000200.pkl'
    assert sources.local_path(str(run)).name == 'network-snapshot-000200.pkl'
    with pytest.raises(sources.SourceError, match='no network-snapshot'):
        sources.newest_snapshot(tmp_path)


def test_list_runs_newest_first_everywhere(tmp_path):
    _touch(tmp_path / 'network-snapshot-000010.pkl', 10)
    _touch(tmp_path / 'network-snapshot-000020.pkl', 20)
    for run in ('00000-old', '00001-new'):
        (tmp_path / run).mkdir()
        _touch(tmp_path / run / 'network-snapshot-000001.pkl', 1)
        _touch(tmp_path / run / 'network-snapshot-000002.pkl', 2)
    runs = sources.list_runs(tmp_path)
    assert [os.path.basename(r) for r, _ in runs] == [tmp_path.name, '00001-new', '00000-old']
    for _, snaps in runs:
        assert snaps == sorted(snaps, reverse=True)  # newest (highest kimg) first; "Newest snapshot" = snaps[0]
    assert runs[0][1][0].endswith('network-snapshot-000020.pkl')
    assert sources.list_runs(None) == [] and sources.list_runs(tmp_path / 'missing') == []


def test_local_path_file_state_and_same_source(tmp_path):
    f = tmp_path / 'a.pkl'
    f.write_bytes(b'x')
    assert sources.local_path(f'file://{f}') == f and sources.local_path('https://x.org/a.pkl') is None
    assert sources.local_path(None) == sources.default_network_path()
    with pytest.raises(sources.SourceError, match='not found'):
        sources.local_path(str(tmp_path / 'missing.pkl'))
    state = sources.file_state(str(f))
    assert state is not None and state[0] == str(f)
    assert sources.file_state(str(tmp_path / 'missing.pkl')) == ('missing',)
    assert sources.file_state(None) is None and sources.file_state('https://x.org/a.pkl') is None
    assert sources.same_source(str(f), f'file://{f}') and not sources.same_source(str(f), None)
    assert sources.is_network_source(str(f)) and sources.is_network_source(str(tmp_path))
    assert not sources.is_network_source('notes.txt') and not sources.is_network_source('')


def test_import_is_torch_free():
    code = 'import sys, engine.sources; print("torch" in sys.modules)'
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, '-c', code], cwd=repo, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == 'False', out.stderr
