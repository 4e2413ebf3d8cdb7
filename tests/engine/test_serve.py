"""The render server against hostile and broken clients (loopback only; every loop bounded in count and time)."""

from __future__ import annotations

import json
import pathlib
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

from engine import wire
from engine.protocol import RenderRequest
from engine.serve import is_loopback
from tests.engine.remote_helpers import (
    TOKEN,
    EchoRenderer,
    connect_authed,
    hello,
    raw_connect,
    recv,
    running_server,
    send,
    wait_closed,
)

REPO = pathlib.Path(__file__).resolve().parents[2]


def _render(sock, stamp, **fields):
    send(sock, {'type': 'render', 'stamp': stamp, 'request': wire.request_to_wire(RenderRequest(**fields))})


def _result(sock, timeout=5.0) -> dict:
    msg = recv(sock, timeout, want='result')
    assert msg['type'] == 'result', msg
    return msg


def _good_client_works(server) -> None:
    """A well-behaved client still connects, renders and gets its frame."""
    with connect_authed(server) as s:
        _render(s, 1, w0_seeds=((42, 1.0),))
        res = wire.result_from_wire(*_split(_result(s)))
        assert res.stamp == 1 and res.image is not None and res.image[5, 5, 0] == 42
        send(s, {'type': 'bye'})


def _split(msg: dict):
    blob = msg.pop('_blob')
    msg.pop('_version')
    return msg, blob


def test_welcome_and_render_round_trip():
    with running_server() as server:
        with raw_connect(server) as s:
            w = hello(s)
            assert w['type'] == 'welcome' and w['version'] == wire.PROTOCOL_VERSION and w['allow_trust'] is False
            _render(s, 5, w0_seeds=((9, 1.0),))
            res = wire.result_from_wire(*_split(_result(s)))
            assert res.stamp == 5 and res.image[1, 1, 0] == 9
            send(s, {'type': 'ping', 't': 1.5})
            assert recv(s, want='pong')['t'] == 1.5
            _render(s, 6, w0_seeds=((9, 1.0),))  # Equal request under a new stamp: answered from the last result.
            assert _result(s)['result']['stamp'] == 6


def test_wrong_token_is_refused_after_a_delay_and_logged(caplog):
    with running_server(auth_fail_delay_sec=0.5) as server:
        for token in ('wrong', '', TOKEN[:-1], TOKEN + 'x', 'ü' * 10):
            with raw_connect(server) as s:
                t0 = time.monotonic()
                send(s, {'type': 'hello', 'version': wire.PROTOCOL_VERSION, 'token': token})
                msgs = wait_closed(s)
                assert time.monotonic() - t0 >= 0.45
                assert [m['code'] for m in msgs] == ['auth'] and 'wrong access token' in msgs[0]['message']
        with raw_connect(server) as s:  # No token at all / a number.
            send(s, {'type': 'hello', 'version': wire.PROTOCOL_VERSION, 'token': 12345})
            assert wait_closed(s)[0]['code'] == 'auth'
        assert 'wrong access token' in caplog.text
        _good_client_works(server)


def test_requests_before_hello_are_refused():
    with running_server() as server:
        with raw_connect(server) as s:
            _render(s, 1)
            msgs = wait_closed(s)
            assert msgs[0]['code'] == 'auth' and 'first message must be hello' in msgs[0]['message']
        _good_client_works(server)


def test_silent_connection_is_closed_after_the_handshake_time():
    with running_server(handshake_timeout_sec=0.5) as server:
        with raw_connect(server) as s:
            t0 = time.monotonic()
            msgs = wait_closed(s, timeout=5)
            assert 0.4 < time.monotonic() - t0 < 4 and msgs[0]['code'] == 'timeout'
        _good_client_works(server)


def test_huge_length_prefix_is_refused_at_once():
    with running_server() as server:
        for authed in (False, True):
            with raw_connect(server) as s:
                if authed:
                    assert hello(s)['type'] == 'welcome'
                s.sendall(wire.HEADER.pack(wire.MAGIC, wire.PROTOCOL_VERSION, 0, 2**32 - 1, 2**32 - 1))
                msgs = wait_closed(s, timeout=3)
                assert msgs[-1]['code'] == 'size' and 'too large' in msgs[-1]['message']
        _good_client_works(server)


def test_not_our_protocol_gets_closed():
    with running_server() as server:
        with raw_connect(server) as s:
            s.sendall(b'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
            assert wait_closed(s)[0]['code'] == 'magic'
        _good_client_works(server)


def test_version_mismatch_gets_a_clear_message():
    with running_server() as server:
        with raw_connect(server) as s:
            send(s, {'type': 'hello', 'version': 99, 'token': TOKEN}, version=99)
            msgs = wait_closed(s)
            assert msgs[0]['code'] == 'version'
            assert 'v99' in msgs[0]['message'] and f'v{wire.PROTOCOL_VERSION}' in msgs[0]['message']
        with raw_connect(server) as s:  # A frame of this version but a hello claiming another.
            send(s, {'type': 'hello', 'version': 2, 'token': TOKEN})
            assert wait_closed(s)[0]['code'] == 'version'


def test_invalid_json_and_unknown_fields_get_error_replies_and_the_session_goes_on():
    with running_server() as server:
        with raw_connect(server) as s:
            assert hello(s)['type'] == 'welcome'
            for body in (b'{"type": "render", "stamp": ', b'[]', b'{"type": Infinity}', b'\xc3\x28'):
                s.sendall(wire.HEADER.pack(wire.MAGIC, wire.PROTOCOL_VERSION, 0, len(body), 0) + body)
                assert recv(s, want='error')['code'] == 'json'
            cases = [
                ({'type': 'render', 'stamp': 1, 'request': {'pkl': None, 'evil': 1}}, 'field', 'evil'),
                ({'type': 'render', 'stamp': 1, 'request': {}, 'extra': 1}, 'field', 'extra'),
                ({'type': 'render', 'stamp': 0, 'request': {}}, 'field', 'positive'),
                ({'type': 'render', 'stamp': 'x', 'request': {}}, 'field', 'integer'),
                ({'type': 'render', 'stamp': 1, 'request': {'w0_seeds': [[1, 'a']]}}, 'field', 'w0_seeds'),
                ({'type': 'render', 'stamp': 1, 'request': {'trunc_psi': [1]}}, 'field', 'trunc_psi'),
                ({'type': 'render', 'stamp': 1, 'request': 'import os'}, 'field', 'object'),
                ({'type': 'encoding', 'codec': 'bmp', 'quality': 50}, 'field', 'codec'),
                ({'type': 'encoding', 'codec': 'jpeg', 'quality': 1000}, 'field', 'quality'),
                ({'type': 'exec', 'code': 'print(1)'}, 'type', 'unknown message type'),
                ({'type': 'ping', 't': 'now'}, 'field', 'number'),
                ({'type': 'list_files', 'path': '/etc'}, 'field', 'path'),
            ]
            for msg, code, needle in cases:
                send(s, msg)
                err = recv(s, want='error')
                assert err['code'] == code and needle in err['message'], (msg, err)
                assert err['fatal'] is False
            _render(s, 2, w0_seeds=((3, 1.0),))
            assert _result(s)['result']['stamp'] == 2
        renderer = EchoRenderer.instances[-1]
        assert all(r.w0_seeds == ((3, 1.0),) for r in renderer.requests)  # Nothing refused reached the renderer.


def test_path_escapes_out_of_root_are_refused(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    (root / 'ok.pkl').write_bytes(b'x')
    (tmp_path / 'secret.pkl').write_bytes(b'x')
    (root / 'link.pkl').symlink_to(tmp_path / 'secret.pkl')
    with running_server(root=str(root)) as server:
        with raw_connect(server) as s:
            assert hello(s)['type'] == 'welcome'
            for i, pkl in enumerate(['../secret.pkl', str(tmp_path / 'secret.pkl'), 'link.pkl', 'file:///etc/passwd']):
                _render(s, 10 + i, pkl=pkl)
                res = _result(s)['result']
                assert res['stamp'] == 10 + i and 'outside the server root' in res['error'], res
            _render(s, 20, pkl='ok.pkl')
            res = _result(s)['result']
            assert res['error'] is None and res['net']['pkl'] == 'ok.pkl'  # The client's own text comes back.
        renderer = EchoRenderer.instances[-1]
        assert [r.pkl for r in renderer.requests] == [str((root / 'ok.pkl').resolve())]
        with connect_authed(server) as s:
            send(s, {'type': 'list_files'})
            files = recv(s, want='files')
            assert files['root'] == str(root.resolve())
            assert [p for _, ps in files['runs'] for p in ps] == [str(root.resolve() / 'ok.pkl')]


@pytest.mark.parametrize('allow_trust', [False, True])
def test_trust_from_a_remote_client(allow_trust):
    with running_server(allow_trust=allow_trust) as server:
        with raw_connect(server) as s:
            assert hello(s)['allow_trust'] is allow_trust
            _render(s, 1, pkl='x.pkl', trust=True)
            res = _result(s)['result']
        renderer = EchoRenderer.instances[-1] if allow_trust else None
        if allow_trust:
            assert res['error'] is None and renderer.requests[-1].trust is True
        else:
            assert '--allow-trust' in res['error'] and res['net'] is None
            assert server._renderer is None  # Refused before anything reached a renderer.


def test_second_client_is_told_busy_and_takes_over_when_the_first_leaves():
    with running_server() as server:
        first = raw_connect(server)
        assert hello(first)['type'] == 'welcome'
        with raw_connect(server) as second:
            msgs = [hello(second)] + wait_closed(second)
            assert msgs[0]['code'] == 'busy' and 'one client renders at a time' in msgs[0]['message']
        first.close()
        time.sleep(0.2)
        _good_client_works(server)


def test_message_flood_is_cut_off():
    with running_server(max_rate_per_sec=50) as server:
        with raw_connect(server) as s:
            assert hello(s)['type'] == 'welcome'
            try:
                for i in range(2000):
                    send(s, {'type': 'ping', 't': float(i)})
            except OSError:
                pass  # Cut off while sending.
            codes = [m.get('code') for m in wait_closed(s) if m['type'] == 'error']
            assert 'rate' in codes
        _good_client_works(server)


def test_truncated_message_closes_only_that_connection():
    with running_server(read_timeout_sec=0.5) as server:
        with raw_connect(server) as s:
            assert hello(s)['type'] == 'welcome'
            frame = wire.encode_message({'type': 'render', 'stamp': 1, 'request': {}})
            s.sendall(frame[:20])
            t0 = time.monotonic()
            msgs = wait_closed(s, timeout=5)
            assert time.monotonic() - t0 < 4 and msgs[-1]['code'] == 'size' and 'truncated' in msgs[-1]['message']
        _good_client_works(server)


def test_client_killed_mid_frame_and_mid_result_leaves_the_server_serving():
    with running_server() as server:
        for cut in (5, 17, 40):
            s = connect_authed(server)
            frame = wire.encode_message({'type': 'render', 'stamp': 1, 'request': {}})
            s.sendall(frame[:cut])
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')  # RST on close.
            s.close()
        s = connect_authed(server)
        _render(s, 1, w0_seeds=((1, 1.0),))
        s.close()  # Gone before the result is sent.
        time.sleep(0.2)
        _good_client_works(server)


def test_random_garbage_never_stops_the_server():
    """Bounded fuzz: 60 connections sending random or mutated bytes before and after the hello."""
    rng = random.Random(99)
    good = [
        wire.encode_message({'type': 'render', 'stamp': 3, 'request': {'w0_seeds': [[1, 0.5]], 'pkl': 'a.pkl'}}),
        wire.encode_message({'type': 'encoding', 'codec': 'jpeg', 'quality': 50}),
        wire.encode_message({'type': 'list_files'}),
    ]
    with running_server(handshake_timeout_sec=0.3, read_timeout_sec=0.3, auth_fail_delay_sec=0.05) as server:
        for i in range(60):
            with raw_connect(server) as s:
                if i % 2:
                    hello(s)
                data = bytearray(rng.choice(good))
                for _ in range(rng.randint(0, 6)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                if i % 7 == 0:
                    data = bytearray(rng.randbytes(rng.randint(1, 300)))
                try:
                    s.sendall(bytes(data))
                    s.settimeout(1.0)
                    s.recv(65536)
                except OSError:
                    pass
        _good_client_works(server)


def test_request_log_records_accepted_requests(tmp_path):
    log = tmp_path / 'requests.jsonl'
    with running_server(request_log=str(log)) as server:
        with raw_connect(server) as s:
            hello(s)
            _render(s, 1, w0_seeds=((5, 1.0),), fft_show=True)
            _result(s)
    [line] = log.read_text().splitlines()
    assert json.loads(line)['w0_seeds'] == [[5, 1.0]] and json.loads(line)['fft_show'] is True


def test_messages_right_behind_the_hello_are_served():
    with running_server() as server:
        with raw_connect(server) as s:
            hello_frame = wire.encode_message({'type': 'hello', 'version': wire.PROTOCOL_VERSION, 'token': TOKEN})
            render = wire.encode_message({'type': 'render', 'stamp': 4, 'request': {'w0_seeds': [[8, 1.0]]}})
            s.sendall(hello_frame + render)  # One packet.
            assert recv(s)['type'] == 'welcome'
            assert _result(s)['result']['stamp'] == 4


def _serve_cli(*args, timeout=60):
    return subprocess.run(
        [sys.executable, '-m', 'engine.serve', *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def test_cli_warns_for_non_loopback_addresses_and_explains_bind_errors():
    r = _serve_cli('--host', '192.0.2.1', '--port', '0')  # TEST-NET-1: never assigned, so binding fails.
    assert r.returncode != 0 and 'WARNING: --host 192.0.2.1 accepts connections from other machines' in r.stderr
    assert 'cannot listen on 192.0.2.1' in r.stderr and 'Traceback' not in r.stderr
    r = _serve_cli('--reuse-token')
    assert r.returncode == 2 and '--reuse-token needs --token-file' in r.stderr
    assert is_loopback('127.0.0.1') and is_loopback('::1') and is_loopback('localhost')
    assert not is_loopback('0.0.0.0') and not is_loopback('10.1.2.3') and not is_loopback('example.org')


def test_cli_prints_address_and_token_writes_a_private_token_file_and_stops_on_sigterm(tmp_path):
    token_file = tmp_path / 'sub' / 'token'

    def start():
        proc = subprocess.Popen(
            [sys.executable, '-m', 'engine.serve', '--port', '0', '--token-file', str(token_file), '--reuse-token'],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines = [proc.stdout.readline() for _ in range(3)]
        return proc, lines

    proc, lines = start()
    try:
        assert 'listening on 127.0.0.1:' in lines[0]
        token = token_file.read_text().strip()
        assert len(token) >= 40 and f'Access token: {token}' in lines[1] and '--connect 127.0.0.1:' in lines[2]
        assert (token_file.stat().st_mode & 0o777) == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and 'stopped' in out
    proc, lines = start()  # --reuse-token: the same token after a restart.
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert f'Access token: {token}' in lines[1]


def test_hostile_connections_do_not_disturb_the_rendering_client():
    with running_server() as server:
        with connect_authed(server) as good:
            _render(good, 1, w0_seeds=((1, 1.0),))
            assert _result(good)['result']['stamp'] == 1
            for payload in (
                wire.HEADER.pack(wire.MAGIC, wire.PROTOCOL_VERSION, 0, 2**32 - 1, 0),
                b'\x00' * 64,
                wire.encode_message({'type': 'hello', 'version': wire.PROTOCOL_VERSION, 'token': 'nope'}),
                wire.encode_message({'type': 'hello', 'version': wire.PROTOCOL_VERSION, 'token': TOKEN}),  # busy
            ):
                with raw_connect(server) as bad:
                    bad.sendall(payload)
                    _render(good, 2, w0_seeds=((2, 1.0),))  # Meanwhile the client keeps rendering.
                    assert _result(good)['result']['stamp'] == 2
                    _render(good, 3, w0_seeds=((1, 1.0),))
                    assert _result(good)['result']['stamp'] == 3
                    assert wait_closed(bad, timeout=5)[0]['type'] == 'error'


def test_requests_get_the_value_checks_of_engine_protocol(monkeypatch):
    """The server refuses what engine.protocol's request checks (request_errors, clamp_request) report, before any
    renderer sees it; the checks are looked up in engine.protocol, so local and remote requests share them."""
    from engine import protocol

    def request_errors(req):
        return (
            (f'noise_mode must be one of {protocol.NOISE_MODES}, got {req.noise_mode!r}',)
            if req.noise_mode == 'x'
            else ()
        )

    def clamp_request(req):
        note = f'trunc_psi {req.trunc_psi!r} is outside -1..2; clamped to 2' if req.trunc_psi > 2 else None
        return req, (note,) if note else ()

    monkeypatch.setattr(protocol, 'request_errors', getattr(protocol, 'request_errors', request_errors), raising=False)
    monkeypatch.setattr(protocol, 'clamp_request', getattr(protocol, 'clamp_request', clamp_request), raising=False)
    with running_server() as server, connect_authed(server) as s:
        for fields, needle in [({'noise_mode': 'x'}, 'noise_mode must be one of'), ({'trunc_psi': 5.0}, 'trunc_psi')]:
            _render(s, 1, **fields)
            err = recv(s, want='error')
            assert err['code'] == 'field' and needle in err['message'], err
        _render(s, 2, trunc_psi=0.5)
        assert _result(s)['result']['stamp'] == 2
        assert [r.trunc_psi for r in EchoRenderer.instances[-1].requests] == [0.5]
