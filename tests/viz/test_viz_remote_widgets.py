"""Remote rendering in the GUI without a window: --connect options, Browse of server files, the trust dialog's
server refusal, the Performance pane's frame encoding."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import types

import pytest

from viz.performance_widget import FRAME_CODECS, PerformanceWidget
from viz.pickle_widget import PickleWidget

REPO = pathlib.Path(__file__).resolve().parents[2]


def _cli(args, timeout=60):
    env = {k: v for k, v in os.environ.items() if k not in ('DISPLAY', 'WAYLAND_DISPLAY')}
    return subprocess.run(
        [sys.executable, str(REPO / 'visualizer.py'), *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.mark.parametrize(
    ('args', 'needle'),
    [
        (['--connect', 'host:0', '--token', 't'], '--connect port must be in 1..65535'),
        (['--connect', ':7600', '--token', 't'], '--connect must be HOST:PORT'),
        (['--connect', 'localhost:7600'], 'exactly one of --token TOKEN or --token-file PATH'),
        (['--connect', 'localhost:7600', '--token', 'a', '--token-file', 'b'], 'exactly one of'),
        (['--connect', 'localhost:7600', '--token-file', '/nonexistent/token'], 'cannot be read'),
        (['--token', 'abc'], '--token and --token-file go with --connect'),
    ],
)
def test_connect_options_are_checked_before_anything_opens(args, needle):
    r = _cli(args)
    assert r.returncode == 2 and needle in r.stderr and 'Traceback' not in r.stderr, r.stderr


class _Remote:
    """The parts of RemoteRenderer the widgets use."""

    def __init__(self, allows_trust=False):
        self.allows_trust = allows_trust
        self.asked = 0

    def request_file_list(self):
        self.asked += 1

    def file_list(self):
        return '/srv/runs', [('/srv/runs/00001-x', ['/srv/runs/00001-x/network-snapshot-000002.pkl'])], None

    def link_stats(self):
        return {'rtt_ms': 1.5, 'bytes_per_frame': 2048.0, 'frame_ms': 9.0, 'status': 'connected to x:1'}


def test_browse_lists_server_files_when_remote(tmp_path):
    local = PickleWidget(types.SimpleNamespace(renderer=object()), browse_dir=str(tmp_path))
    (tmp_path / 'a.pkl').write_bytes(b'x')
    where, runs = local.browse_runs()
    assert where == str(tmp_path) and runs[0][1] == [str(tmp_path / 'a.pkl')]
    remote = PickleWidget(types.SimpleNamespace(renderer=_Remote()), browse_dir=str(tmp_path))
    where, runs = remote.browse_runs()
    assert where == '/srv/runs' and runs[0][1] == ['/srv/runs/00001-x/network-snapshot-000002.pkl']


def test_trust_dialog_knows_when_the_server_refuses_trust():
    assert PickleWidget(types.SimpleNamespace(renderer=_Remote(allows_trust=False))).trust_refused_by_server()
    assert not PickleWidget(types.SimpleNamespace(renderer=_Remote(allows_trust=True))).trust_refused_by_server()
    assert not PickleWidget(types.SimpleNamespace(renderer=object())).trust_refused_by_server()


def test_frame_encoding_state_is_validated_and_applied_once():
    w = PerformanceWidget(None)
    w.mark_applied(w.pending_changes())
    assert w.pending_changes() == {}
    w.set_state({'frame_codec': 'webp', 'frame_quality': 55})
    assert w.pending_changes() == {'frame_encoding': ('webp', 55)}
    w.mark_applied(w.pending_changes())
    for codec, quality, want in [
        ('bmp', 50, ('auto', 50)),
        ('jpeg', 1000, ('jpeg', 100)),
        ('jpeg', -5, ('jpeg', 1)),
        ('png', 'x', ('png', 90)),
        ('raw', float('nan'), ('raw', 90)),
    ]:
        w.set_state({'frame_codec': codec, 'frame_quality': quality})
        assert (w.frame_codec, w.frame_quality) == want
    assert set(FRAME_CODECS) == {'auto', 'png', 'jpeg', 'webp', 'raw'}


def test_frame_codecs_match_the_wire_format():
    from engine import wire

    assert tuple(FRAME_CODECS) == wire.CODECS
