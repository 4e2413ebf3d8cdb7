"""RemoteRenderer (the torch-free client): the AsyncRenderer interface over a socket, link state, reconnection, and a
real server process rendering for a client that cannot import torch (loopback only, every wait bounded)."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from engine import wire
from engine.protocol import RenderRequest
from engine.remote_client import RemoteRenderer, parse_address, read_token_file
from tests.engine.remote_helpers import (
    BLOCK_TORCH,
    TOKEN,
    EchoRenderer,
    addr,
    running_server,
    start_server_process,
    wait_for,
)

REPO = pathlib.Path(__file__).resolve().parents[2]


def _result_for(r: RemoteRenderer, stamp: int, timeout: float = 10.0):
    """The first delivered result with a stamp >= ``stamp`` (bounded wait)."""
    return wait_for(lambda: res if (res := r.get_result()) is not None and res.stamp >= stamp else None, timeout)


def test_parse_address_and_token_file(tmp_path):
    assert parse_address('localhost:7601') == ('localhost', 7601)
    assert parse_address('10.0.0.2') == ('10.0.0.2', wire.DEFAULT_PORT)
    assert parse_address('[::1]:9000') == ('::1', 9000)
    for bad in ('', ':7600', 'host:0', 'host:99999', 'a:b:c'):
        with pytest.raises(ValueError, match='--connect'):
            parse_address(bad)
    (tmp_path / 'tok').write_text('  abc123 \nignored\n')
    assert read_token_file(str(tmp_path / 'tok')) == 'abc123'
    (tmp_path / 'empty').write_text('\n')
    with pytest.raises(ValueError, match='empty'):
        read_token_file(str(tmp_path / 'empty'))
    with pytest.raises(ValueError, match='cannot be read'):
        read_token_file(str(tmp_path / 'missing'))


def test_renders_like_async_renderer_and_reports_the_link():
    with running_server() as server, RemoteRenderer(addr(server), TOKEN) as r:
        assert r.get_result() is None and r.last_stamp == 0 and r.pid is None
        s1 = r.set_request(RenderRequest(w0_seeds=((7, 1.0),)))
        assert r.set_request(RenderRequest(w0_seeds=((7, 1.0),))) == s1  # Equal requests are not sent again.
        res = _result_for(r, s1)
        assert res.stamp == s1 and res.image[3, 3, 0] == 7 and not r.is_busy
        wait_for(lambda: r.link_stats()['rtt_ms'] > 0, timeout=5)
        stats = r.link_stats()
        assert stats['connected'] and stats['bytes_per_frame'] > 0 and stats['frame_ms'] > 0
        # Many requests in a burst: the newest one is answered, stale frames are never queued.
        last = 0
        for seed in range(30):
            last = r.set_request(RenderRequest(w0_seeds=((seed, 1.0),)))
        res = _result_for(r, last)
        assert res.stamp == last and res.image[3, 3, 0] == 29
        renderer = EchoRenderer.instances[-1]
        assert len(renderer.requests) <= 31
        # Frame encoding: the current frame comes again in the new codec.
        r.set_frame_encoding('jpeg', 50)
        wait_for(lambda: r.link_stats()['codec'] == 'jpeg', timeout=5)
        before = len(renderer.requests)
        res = _result_for(r, last)
        assert res.image.shape == (32, 32, 3)
        with pytest.raises(ValueError, match='quality'):
            r.set_frame_encoding('jpeg', 0)
        # Browse: the server's files.
        r.request_file_list()
        root, runs, err = wait_for(lambda: fl if (fl := r.file_list())[0] else None, timeout=5)
        assert err is None and root == os.path.realpath(os.getcwd())
        # Render mode forwarded.
        r.set_separate_process(False)
        wait_for(lambda: renderer.separate_process is False, timeout=5)
        assert len(renderer.requests) >= before


def test_wrong_token_stops_retrying_with_a_clear_message():
    with running_server(auth_fail_delay_sec=0.2) as server:
        r = RemoteRenderer(addr(server), 'not-the-token')
        try:
            r.set_request(RenderRequest())
            wait_for(lambda: r.fatal_error, timeout=10)
            assert 'wrong access token' in r.status and not r.connected
            notice = wait_for(r.get_result, timeout=5)
            assert 'wrong access token' in notice.error
            time.sleep(0.5)
            assert r.num_connects == 0 and server._renderer is None
        finally:
            r.close()


def test_version_mismatch_from_the_server_is_shown_and_not_retried():
    """A server of another protocol version: the client says so and gives up."""
    lst = socket.create_server(('127.0.0.1', 0))
    port = lst.getsockname()[1]
    seen = []

    def serve_once():
        conn, _ = lst.accept()
        with conn:
            conn.settimeout(5)
            seen.append(conn.recv(65536))
            conn.sendall(wire.encode_message({'type': 'welcome', 'version': 7}, version=7))
            time.sleep(0.5)

    t = threading.Thread(target=serve_once, daemon=True)
    t.start()
    r = RemoteRenderer(f'127.0.0.1:{port}', 'tok')
    try:
        wait_for(lambda: r.fatal_error, timeout=10)
        assert 'v7' in r.fatal_error and f'v{wire.PROTOCOL_VERSION}' in r.fatal_error and 'same sg3viz' in r.fatal_error
    finally:
        r.close()
        t.join(timeout=5)
        lst.close()
    assert seen and seen[0][:4] == wire.MAGIC


def test_server_restart_shows_disconnected_then_reconnects_and_resends_the_state():
    r = None
    try:
        with running_server() as server:
            host, port = server.address
            r = RemoteRenderer(f'{host}:{port}', TOKEN, max_retry_sec=0.5)
            r.set_frame_encoding('raw', 90)
            stamp = r.set_request(RenderRequest(w0_seeds=((11, 1.0),)))
            assert _result_for(r, stamp).image[3, 3, 0] == 11
        # The server has stopped: the GUI gets a notice and the status says it is retrying.
        wait_for(lambda: not r.connected, timeout=10)
        notice = wait_for(r.get_result, timeout=10)
        assert 'disconnected, retrying' in notice.error and notice.stamp == stamp
        assert 'retrying in' in r.status
        with running_server(port=port) as server2:
            wait_for(lambda: r.connected, timeout=10)
            res = _result_for(r, stamp)  # The current request was re-sent under its stamp.
            assert res.stamp == stamp and res.error is None and res.image[3, 3, 0] == 11
            renderer2 = EchoRenderer.instances[-1]
            assert server2._renderer is renderer2 and renderer2.requests[-1].w0_seeds == ((11, 1.0),)
            assert r.num_connects == 2
    finally:
        if r is not None:
            r.close()


@pytest.mark.slow
def test_torch_free_client_renders_with_a_real_server_process(tmp_path):
    """The client side imports no torch (blocked) and gets real frames of the bundled network from a server
    process; a blocked import proves nothing on the client needs torch."""
    proc, address, token = start_server_process(tmp_path)
    try:
        code = BLOCK_TORCH + textwrap.dedent(
            f"""
            import json, sys, time
            sys.path.insert(0, {str(REPO)!r})
            from engine.protocol import RenderRequest
            from engine.remote_client import RemoteRenderer
            try:
                import torch
            except ImportError:
                pass
            else:
                raise SystemExit('the torch blocker does not work')
            out = {{}}
            with RemoteRenderer({address!r}, {token!r}) as r:
                for seed in (1, 2):
                    stamp = r.set_request(RenderRequest(w0_seeds=((seed, 1.0),), fft_show=True, device='cpu'))
                    deadline = time.monotonic() + 240
                    res = None
                    while time.monotonic() < deadline:
                        res = r.get_result()
                        if res is not None and res.stamp >= stamp:
                            break
                        time.sleep(0.01)
                    assert res is not None and res.error is None, res
                    out[seed] = [float(res.image.std()), list(res.image.shape), list(res.fft.shape), res.net.arch]
                out['link'] = r.link_stats()
            out['torch_loaded'] = any(m == 'torch' or m.startswith('torch.') for m in sys.modules)
            print(json.dumps(out))
            """
        )
        done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=400, cwd=REPO)
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out['torch_loaded'] is False
        for seed in ('1', '2'):
            std, shape, fft_shape, arch = out[seed]
            assert std > 5 and shape[2] == 3 and fft_shape[2] == 3 and arch.startswith('stylegan')
        assert out['1'][0] != out['2'][0]
        assert out['link']['bytes_per_frame'] > 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_render_process_restart_is_forwarded():
    with running_server() as server, RemoteRenderer(addr(server), TOKEN) as r:
        stamp = r.set_request(RenderRequest(w0_seeds=((1, 1.0),)))
        _result_for(r, stamp)
        assert r.is_restarting is False
        EchoRenderer.instances[-1].is_restarting = True  # The server's render process died and restarts.
        stamp = r.set_request(RenderRequest(w0_seeds=((2, 1.0),)))
        _result_for(r, stamp)
        assert r.is_restarting is True
        EchoRenderer.instances[-1].is_restarting = False
        stamp = r.set_request(RenderRequest(w0_seeds=((3, 1.0),)))
        _result_for(r, stamp)
        assert r.is_restarting is False


def test_hostile_server_messages_are_refused_and_the_client_retries():
    """A server sending malformed results: the client drops the connection, says why and reconnects."""
    lst = socket.create_server(('127.0.0.1', 0))
    port = lst.getsockname()[1]
    bad_frames = [
        wire.encode_message({'type': 'result', 'result': {'stamp': 'x'}, 'images': []}),
        wire.encode_message({'type': 'result', 'result': {'stamp': 1}, 'images': [{'field': 'image'}]}),
        wire.HEADER.pack(wire.MAGIC, wire.PROTOCOL_VERSION, 0, 2**32 - 1, 0),
        b'garbage that is not a frame at all',
    ]
    served = []

    def serve():
        lst.settimeout(10)
        for frame in bad_frames:
            try:
                conn, _ = lst.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                conn.recv(65536)
                conn.sendall(wire.encode_message({'type': 'welcome', 'version': wire.PROTOCOL_VERSION}) + frame)
                served.append(frame)
                time.sleep(0.3)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    r = RemoteRenderer(f'127.0.0.1:{port}', 'tok', max_retry_sec=0.3)
    try:
        r.set_request(RenderRequest())
        wait_for(lambda: len(served) == len(bad_frames), timeout=20)
        wait_for(lambda: not r.connected, timeout=10)
        wait_for(lambda: r.fatal_error, timeout=10)  # Garbage instead of frames: not our server, no more retries.
        assert 'not an sg3viz remote-rendering stream' in r.fatal_error
        assert r.num_connects == 2 and not r._thread.is_alive()  # Two sessions began (bad results), two never did.
    finally:
        r.close()
        t.join(timeout=10)
        lst.close()
