"""Helpers of the remote-rendering tests: a server in a thread, raw protocol sockets, a stand-in renderer."""

from __future__ import annotations

import contextlib
import pathlib
import socket
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import numpy as np

from engine import wire
from engine.protocol import NetInfo, RenderRequest, RenderResult
from engine.remote_client import read_token_file
from engine.serve import RenderServer, ServerConfig

TOKEN = 'test-token-0123456789'
REPO = pathlib.Path(__file__).resolve().parents[2]


class EchoRenderer:
    """Stand-in for ``AsyncRenderer`` (same calls the server makes): renders a flat image whose grey level is the
    first seed, 32x32, at once; records every request it was given."""

    instances: list[EchoRenderer] = []

    def __init__(self, device: str = 'auto', separate_process: bool = True, size: int = 32):
        self.device = device
        self.separate_process = separate_process
        self.size = size
        self.requests: list[RenderRequest] = []
        self._last: RenderRequest | None = None
        self._stamp = 0
        self._out: RenderResult | None = None
        self.closed = False
        self.is_restarting = False  # Tests set it (AsyncRenderer: the render process is being restarted).
        EchoRenderer.instances.append(self)

    def set_request(self, req: RenderRequest) -> int:
        if self._last is not None and req == self._last:
            return self._stamp
        self._stamp += 1
        self._last = req.replace(stamp=self._stamp)
        self.requests.append(self._last)
        level = int(req.w0_seeds[0][0]) % 256 if req.w0_seeds else 0
        img = np.full((self.size, self.size, 3), level, dtype=np.uint8)
        img[0, 0] = (255 - level, 7, 9)
        net = NetInfo(req.pkl or '', req.pkl or 'default', 'stylegan3', self.size, 3, 8, 0, 8, 4, False, True)
        self._out = RenderResult(stamp=self._stamp, image=img, net=net, available_devices=('cpu',), device='cpu')
        return self._stamp

    def get_result(self) -> RenderResult | None:
        res, self._out = self._out, None
        return res

    @property
    def last_stamp(self) -> int:
        return self._stamp

    @property
    def is_busy(self) -> bool:
        return False

    def set_separate_process(self, value: bool) -> int:
        if bool(value) != self.separate_process and self._last is not None:
            self.separate_process = bool(value)
            req, self._last = self._last, None
            return self.set_request(req)
        self.separate_process = bool(value)
        return self._stamp

    def close(self) -> None:
        self.closed = True


@contextlib.contextmanager
def running_server(renderer_factory=EchoRenderer, **overrides):
    """A RenderServer on 127.0.0.1 (free port) in a thread; yields it; stops and joins it after."""
    cfg = dict(
        host='127.0.0.1',
        port=0,
        token=TOKEN,
        auth_fail_delay_sec=0.3,
        handshake_timeout_sec=2.0,
        read_timeout_sec=1.0,
        idle_timeout_sec=10.0,
    )
    cfg.update(overrides)
    server = RenderServer(ServerConfig(**cfg), renderer_factory=renderer_factory)
    server.start()
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_sec': 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout=10)
        server.close()
        assert not thread.is_alive(), 'the server loop did not stop'


def addr(server: RenderServer) -> str:
    host, port = server.address
    return f'{host}:{port}'


def raw_connect(server: RenderServer) -> socket.socket:
    s = socket.create_connection(server.address, timeout=5)
    s.settimeout(5)
    return s


def send(sock: socket.socket, msg: dict, *, version: int = wire.PROTOCOL_VERSION) -> None:
    sock.sendall(wire.encode_message(msg, version=version))


def hello(sock: socket.socket, token: str = TOKEN) -> dict:
    """Sends hello and returns the first answer (welcome or error)."""
    send(sock, {'type': 'hello', 'version': wire.PROTOCOL_VERSION, 'token': token, 'client': 'test'})
    return recv(sock)


_READERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # socket -> (FrameReader, parsed messages)


def recv(sock: socket.socket, timeout: float = 5.0, *, want: str | None = None) -> dict:
    """The next message (of type ``want`` when given: others are skipped); {'type': 'closed'} on EOF."""
    if sock not in _READERS:
        _READERS[sock] = (wire.FrameReader(wire.SERVER_TO_CLIENT), [])
    reader, queue = _READERS[sock]
    deadline = time.monotonic() + timeout
    while True:
        while queue:
            version, msg, blob = queue.pop(0)
            if want is None or (isinstance(msg, dict) and msg.get('type') == want):
                if isinstance(msg, dict):
                    msg = dict(msg, _blob=blob, _version=version)
                return msg
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f'no {want or "message"} within {timeout} s')
        sock.settimeout(left)
        try:
            data = sock.recv(1 << 20)
        except ConnectionResetError:
            data = b''
        if not data:
            return {'type': 'closed'}
        queue.extend(reader.feed(data))


def wait_closed(sock: socket.socket, timeout: float = 5.0) -> list[dict]:
    """Reads until EOF; returns the messages that came before it."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = recv(sock, max(0.05, deadline - time.monotonic()))
        if msg.get('type') == 'closed':
            return got
        got.append(msg)
    raise TimeoutError('the server did not close the connection')


def wait_for(cond, timeout: float = 10.0, step: float = 0.01):
    """Polls ``cond()`` until truthy (returns it) or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError(f'condition not met within {timeout} s')


def connect_authed(server: RenderServer, timeout: float = 3.0) -> socket.socket:
    """A connection past the hello; retries while the server still reports the previous client as busy."""
    deadline = time.monotonic() + timeout
    while True:
        s = raw_connect(server)
        msg = hello(s)
        if msg['type'] == 'welcome':
            return s
        s.close()
        if msg.get('code') != 'busy' or time.monotonic() > deadline:
            raise AssertionError(f'no welcome: {msg}')
        time.sleep(0.05)


BLOCK_TORCH = textwrap.dedent(
    """
    import importlib.abc, sys

    class _NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == 'torch' or name.startswith('torch.'):
                raise ImportError(f'{name} is blocked: the client must run without torch')
            return None

    sys.meta_path.insert(0, _NoTorch())
    """
)


def start_server_process(tmp_path: pathlib.Path, *args: str, timeout: float = 120.0, port: str = '0'):
    """``python -m engine.serve --port 0 --token-file ...`` in a subprocess (cwd: the repository); returns
    (process, address, token). The caller terminates the process."""
    token_file = tmp_path / 'token'
    cmd = [sys.executable, '-m', 'engine.serve', '--port', port, '--device', 'cpu', '--token-file', str(token_file)]
    proc = subprocess.Popen([*cmd, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    address = None
    lines = []
    while address is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if 'listening on' in line:
            address = line.split('listening on ')[1].split()[0]
    if address is None:
        proc.kill()
        raise AssertionError('server did not start:\n' + ''.join(lines))
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # Keep the pipe drained.
    return proc, address, read_token_file(str(token_file))
