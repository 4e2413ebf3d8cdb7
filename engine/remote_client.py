"""The client of a render server (``python -m engine.serve``): an ``AsyncRenderer`` look-alike over a socket.

:class:`RemoteRenderer` has the interface the GUI uses on ``engine.async_renderer.AsyncRenderer`` (``set_request``,
``get_result``, ``is_busy``, ``last_stamp``, ``set_separate_process``, ``close``), so the visualizer does not care
where rendering happens. It imports no torch: a laptop with imgui-bundle, glfw, PyOpenGL, numpy and Pillow runs it.

A daemon network thread owns the socket: it connects, authenticates, sends the newest request (older unsent ones
are dropped; at most one request per ``min_send_interval_sec``), decodes results off the GUI thread and keeps only
the newest one, pings once a second for the round-trip time, and after a lost connection retries with a growing
pause (0.25 s doubling to ``max_retry_sec``), re-sending the current request and frame encoding when it is back.
While disconnected :attr:`status` reads "disconnected from HOST:PORT (reason); retrying in N s" and one result with
that error is delivered. A wrong token or a protocol version mismatch stops the retries (:attr:`fatal_error`).

Example::

    r = RemoteRenderer('localhost:7600', token)
    stamp = r.set_request(RenderRequest(w0_seeds=((1, 1.0),)))
    while (res := r.get_result()) is None or res.stamp < stamp:
        time.sleep(0.01)
    r.close()
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import re
import select
import socket
import statistics
import threading
import time
from typing import Any

from engine import wire
from engine.protocol import RenderRequest, RenderResult
from engine.token_files import read_token_file
from engine.wire import WireError

logger = logging.getLogger(__name__)

_FATAL_CODES = ('auth', 'version', 'magic')  # Retrying cannot help: stop and say why.


def parse_address(address: str, default_port: int = wire.DEFAULT_PORT) -> tuple[str, int]:
    """'HOST:PORT', 'HOST' or '[IPv6]:PORT' -> (host, port).

    Raises:
        ValueError: empty host or a port outside 1..65535.
    """
    text = (address or '').strip()
    m = re.fullmatch(r'\[([^\]]+)\](?::(\d+))?', text) or re.fullmatch(r'([^:\[\]]+)(?::(\d+))?', text)
    if not m or not m.group(1):
        raise ValueError(f'--connect must be HOST:PORT like localhost:{default_port}, got {address!r}')
    port = int(m.group(2)) if m.group(2) else default_port
    if not 1 <= port <= 65535:
        raise ValueError(f'--connect port must be in 1..65535, got {port}')
    return m.group(1), port


class RemoteRenderer:
    """Renders on a server; same interface as ``AsyncRenderer`` plus link state for the GUI.

    Args:
        address: 'HOST:PORT' of the server.
        token: the server's access token.
        encoding: how the server compresses frames (see ``engine.wire.FrameEncoding``).
        connect_timeout_sec: time allowed to connect and authenticate.
        max_retry_sec: longest pause between reconnection attempts.
        max_sends_per_sec: at most this many messages in any second (newer requests replace unsent older ones);
            keeps the client under the server's message-rate limit without delaying requests below that rate.

    Raises:
        ValueError: bad address or empty token.
    """

    def __init__(
        self,
        address: str,
        token: str,
        *,
        encoding: wire.FrameEncoding | None = None,
        connect_timeout_sec: float = 5.0,
        max_retry_sec: float = 4.0,
        max_sends_per_sec: int = 150,
    ):
        self.host, self.port = parse_address(address)
        if not isinstance(token, str) or not token.strip():
            raise ValueError('RemoteRenderer(): token must be the non-empty token the server printed')
        self._token = token.strip()
        self._encoding = encoding or wire.FrameEncoding()
        self._connect_timeout = float(connect_timeout_sec)
        self._max_retry = float(max_retry_sec)
        self._max_sends = max(1, int(max_sends_per_sec))
        self._sends: collections.deque[float] = collections.deque()  # Send times within the last second.
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # Shared with the network thread (under _lock).
        self._last_req: RenderRequest | None = None
        self._next_stamp = 1
        self._sent_stamp = 0  # Stamp of the newest request written to the socket.
        self._received_stamp = 0
        self._delivered_stamp = 0
        self._pending: RenderResult | None = None
        self._notice: RenderResult | None = None
        self._dirty = {'request': False, 'encoding': True, 'files': False, 'separate_process': False}
        self._separate = True
        self._files: tuple[str, list[tuple[str, list[str]]]] | None = None
        self._files_error: str | None = None
        self._connected = False
        self._status = f'connecting to {self.host}:{self.port} ...'
        self._fatal: str | None = None
        self._restarting = False
        self._early: list = []
        self._last_reason: str | None = None
        self._welcome: dict = {}
        self._server_errors: collections.deque[str] = collections.deque(maxlen=8)
        self._rtt_ms: collections.deque[float] = collections.deque(maxlen=30)
        self._frame_bytes: collections.deque[int] = collections.deque(maxlen=30)
        self._frame_ms: collections.deque[float] = collections.deque(maxlen=30)
        self._send_times: dict[int, float] = {}
        self.num_connects = 0
        self._thread = threading.Thread(target=self._run, name='sg3viz-remote', daemon=True)
        self._thread.start()

    # ---- the AsyncRenderer interface ----------------------------------------------------------------------------
    def set_request(self, req: RenderRequest) -> int:
        """Asks the server for ``req`` unless it equals the previous request; returns the request's stamp.

        Raises:
            TypeError: ``req`` is not a RenderRequest.
            RuntimeError: after :meth:`close`.
        """
        if not isinstance(req, RenderRequest):
            raise TypeError(f'set_request(): req must be a RenderRequest, got {type(req).__name__}')
        if self._closed.is_set():
            raise RuntimeError('set_request(): the RemoteRenderer is closed; make a new one')
        with self._lock:
            if self._last_req is not None and req == self._last_req:
                return self._last_req.stamp
            stamp = int(req.stamp) if int(req.stamp) >= self._next_stamp else self._next_stamp
            self._next_stamp = stamp + 1
            self._last_req = dataclasses.replace(req, stamp=stamp)
            self._dirty['request'] = True
        self._wake()
        return stamp

    def get_result(self) -> RenderResult | None:
        """The newest result not delivered yet (a connection notice first), or None; never blocks."""
        with self._lock:
            if self._notice is not None:
                res, self._notice = self._notice, None
            elif self._pending is not None:
                res, self._pending = self._pending, None
            else:
                return None
            self._delivered_stamp = max(self._delivered_stamp, res.stamp)
            return res

    @property
    def is_busy(self) -> bool:
        """True while the newest request has not been answered yet."""
        with self._lock:
            return self._last_req is not None and self._received_stamp < self._last_req.stamp

    @property
    def is_restarting(self) -> bool:
        """True while the server's render process restarts (it died; the new one has not answered yet)."""
        return self._restarting

    @property
    def last_stamp(self) -> int:
        """Stamp of the newest request."""
        with self._lock:
            return self._last_req.stamp if self._last_req is not None else 0

    @property
    def separate_process(self) -> bool:
        """Whether the server renders in a separate process (as asked by :meth:`set_separate_process`)."""
        return self._separate

    @property
    def pid(self) -> None:
        """No local render process."""
        return None

    def set_separate_process(self, separate_process: bool) -> int | None:
        """Asks the server to render in a separate process or a thread.

        Returns:
            The stamp under which the current request is rendered again (the server answers it under the current
            stamp), or None when nothing is re-sent (no switch or no request yet).
        """
        with self._lock:
            if bool(separate_process) == self._separate:
                return None
            self._separate = bool(separate_process)
            self._dirty['separate_process'] = True
            stamp = self._last_req.stamp if self._last_req is not None else None
        self._wake()
        return stamp

    def close(self) -> None:
        """Says bye, closes the connection and stops the network thread. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake()
        self._thread.join(timeout=5)
        for s in (self._wake_r, self._wake_w):
            s.close()

    def __enter__(self) -> RemoteRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- link state and remote extras -----------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f'{self.host}:{self.port}'

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def status(self) -> str:
        """'connected to HOST:PORT', 'connecting ...', 'disconnected ...; retrying in N s' or the fatal reason."""
        return self._fatal or self._status

    @property
    def fatal_error(self) -> str | None:
        """Why the client gave up (wrong token, version mismatch), else None."""
        return self._fatal

    @property
    def allows_trust(self) -> bool:
        """Whether the server accepts trust=True (False until the server said so)."""
        return bool(self._welcome.get('allow_trust', False))

    def link_stats(self) -> dict:
        """{'rtt_ms' (median ping round trip), 'bytes_per_frame' (mean), 'last_frame_bytes', 'frame_ms' (mean time from
        sending a request to its decoded result), 'codec', 'quality', 'status', 'connected'}, over the last 30 samples
        (0 when none)."""
        with self._lock:
            rtt = list(self._rtt_ms)
            nbytes = list(self._frame_bytes)
            fms = list(self._frame_ms)
        return {
            'rtt_ms': statistics.median(rtt) if rtt else 0.0,
            'bytes_per_frame': sum(nbytes) / len(nbytes) if nbytes else 0.0,
            'last_frame_bytes': nbytes[-1] if nbytes else 0,
            'frame_ms': sum(fms) / len(fms) if fms else 0.0,
            'codec': self._encoding.codec,
            'quality': self._encoding.quality,
            'status': self.status,
            'connected': self._connected,
        }

    def set_frame_encoding(self, codec: str, quality: int) -> None:
        """How the server compresses frames from now on (the current frame is rendered again in it).

        Raises:
            ValueError: unknown codec or quality outside 1..100.
        """
        enc = wire.FrameEncoding(codec=codec, quality=int(quality))
        with self._lock:
            if enc == self._encoding:
                return
            self._encoding = enc
            self._dirty['encoding'] = True
            if self._last_req is not None:  # Re-render so the frame on screen shows the new quality.
                self._dirty['request'] = True
        self._wake()

    def request_file_list(self) -> None:
        """Asks the server for its .pkl files (Browse); :meth:`file_list` has the answer when it comes."""
        with self._lock:
            self._dirty['files'] = True
        self._wake()

    def file_list(self) -> tuple[str | None, list, str | None]:
        """(listed server directory or None, [[dir, [pkl, ...]], ...], error or None) from the last answer."""
        with self._lock:
            if self._files is None:
                return None, [], self._files_error
            return self._files[0], list(self._files[1]), self._files_error

    def server_errors(self) -> list[str]:
        """Recent non-fatal error messages from the server (refused messages)."""
        with self._lock:
            return list(self._server_errors)

    # ---- the network thread ---------------------------------------------------------------------------------------
    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b'x')

    def _run(self) -> None:
        delay = 0.25
        while not self._closed.is_set():
            reason = None
            try:
                sock = self._connect()
            except (OSError, WireError) as e:
                reason = _reason(e)
                if isinstance(e, WireError) and e.code in _FATAL_CODES:
                    self._give_up(str(e))
                    return
            else:
                delay = 0.25
                try:
                    self._session(sock)
                    if self._closed.is_set():
                        return
                    reason = 'the server closed the connection'
                except (OSError, WireError) as e:
                    reason = _reason(e)
                    if isinstance(e, WireError) and e.code in _FATAL_CODES:
                        self._give_up(str(e))
                        return
                except Exception as e:  # A bug must not silently end the network thread: reconnect instead.
                    logger.exception('remote renderer: unexpected error')
                    reason = f'internal error: {type(e).__name__}: {e}'
                finally:
                    with contextlib.suppress(OSError):
                        sock.close()
            self._disconnected(reason or 'unknown', delay)
            self._closed.wait(delay)
            delay = min(delay * 2, self._max_retry)

    def _give_up(self, text: str) -> None:
        self._connected = False
        self._fatal = f'{self.host}:{self.port}: {text}'
        logger.error('remote renderer: %s', self._fatal)
        with self._lock:
            stamp = self._last_req.stamp if self._last_req is not None else 0
            self._notice = RenderResult(
                stamp=max(stamp, self._delivered_stamp), error=f'Remote rendering: {self._fatal}'
            )

    def _disconnected(self, reason: str, delay: float) -> None:
        was = self._connected
        self._connected = False
        self._status = f'disconnected from {self.host}:{self.port} ({reason}); retrying in {delay:.1f} s'
        if was or reason != self._last_reason:
            logger.warning('remote renderer: %s', self._status)
        self._last_reason = reason
        with self._lock:
            if was and self._last_req is not None:
                self._notice = RenderResult(
                    stamp=max(self._last_req.stamp, self._delivered_stamp),
                    error=f'Render server {self.host}:{self.port}: disconnected, retrying ({reason})',
                )

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self._connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(
                wire.encode_message(
                    {'type': 'hello', 'version': wire.PROTOCOL_VERSION, 'token': self._token, 'client': 'sg3viz'}
                )
            )
            reader = wire.FrameReader(wire.SERVER_TO_CLIENT)
            deadline = time.monotonic() + self._connect_timeout + 5.0  # A wrong token is answered after a delay.
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WireError('timeout', 'no answer to hello')
                sock.settimeout(left)
                data = sock.recv(65536)
                if not data:
                    raise OSError('closed during the handshake')
                got = reader.feed(data)
                for i, (version, msg, _) in enumerate(got):
                    self._check_message(version, msg)
                    assert isinstance(msg, dict)
                    if msg['type'] == 'welcome':
                        self._welcome = msg
                        self._reader = reader
                        self._early = got[i + 1 :]  # What came right behind the welcome.
                        return sock
        except BaseException:
            sock.close()
            raise

    def _check_message(self, version: int, msg: dict | WireError) -> None:
        if isinstance(msg, WireError):
            raise msg
        if msg.get('type') == 'error':  # Readable in every version.
            code, text = str(msg.get('code', '')), str(msg.get('message', ''))[:2000]
            if msg.get('fatal') or code in _FATAL_CODES:
                raise WireError(code, f'server: {text}')
            with self._lock:
                self._server_errors.append(text)
            logger.warning('render server: %s', text)
            return
        wire.check_version(version, 'server')

    def _session(self, sock: socket.socket) -> None:
        self.num_connects += 1
        self._connected = True
        self._status = f'connected to {self.host}:{self.port}'
        logger.info('remote renderer: %s', self._status)
        with self._lock:  # Re-send the state: encoding, render mode, the current request (same stamp).
            self._dirty['encoding'] = True
            self._dirty['separate_process'] = not self._separate
            self._dirty['request'] = self._last_req is not None
        last_ping = 0.0
        reader = self._reader
        for version, msg, blob in self._early:
            self._on_message(version, msg, blob)
        while not self._closed.is_set():
            now = time.monotonic()
            while self._sends and now - self._sends[0] > 1.0:
                self._sends.popleft()
            if now - last_ping >= 1.0:
                self._send(sock, {'type': 'ping', 't': now})
                last_ping = now
            wait = 0.5
            if self._dirty_any():
                if len(self._sends) < self._max_sends - 2:  # Room for a ping.
                    self._flush(sock)
                else:
                    wait = 1.0 - (now - self._sends[0])
            readable, _, _ = select.select([sock, self._wake_r], [], [], min(wait, 1.0 - (now - last_ping)) + 1e-3)
            if self._wake_r in readable:
                with contextlib.suppress(OSError):
                    self._wake_r.recv(4096)
            if sock in readable:
                data = sock.recv(1 << 20)
                if not data:
                    return
                for version, msg, blob in reader.feed(data):
                    self._on_message(version, msg, blob)
        with contextlib.suppress(OSError):
            self._send(sock, {'type': 'bye'})

    def _dirty_any(self) -> bool:
        with self._lock:
            return any(self._dirty.values())

    def _send(self, sock: socket.socket, msg: dict) -> None:
        self._sends.append(time.monotonic())
        sock.settimeout(10.0)
        sock.sendall(wire.encode_message(msg))

    def _flush(self, sock: socket.socket) -> None:
        with self._lock:
            dirty = dict(self._dirty)
            for k in self._dirty:
                self._dirty[k] = False
            req, enc, separate = self._last_req, self._encoding, self._separate
        if dirty['encoding']:
            self._send(sock, {'type': 'encoding', 'codec': enc.codec, 'quality': enc.quality})
        if dirty['separate_process']:
            self._send(sock, {'type': 'separate_process', 'value': separate})
        if dirty['files']:
            self._send(sock, {'type': 'list_files'})
        if dirty['request'] and req is not None:
            self._send_times[req.stamp] = time.monotonic()
            if len(self._send_times) > 256:
                for s in sorted(self._send_times)[:128]:
                    del self._send_times[s]
            self._send(sock, {'type': 'render', 'stamp': req.stamp, 'request': wire.request_to_wire(req)})
            self._sent_stamp = req.stamp

    def _on_message(self, version: int, msg: dict | WireError, blob: bytes) -> None:
        self._check_message(version, msg)
        assert isinstance(msg, dict)
        kind = msg['type']
        if kind == 'result':
            res = wire.result_from_wire(msg, blob)
            sent = self._send_times.pop(res.stamp, None)
            with self._lock:
                self._frame_bytes.append(len(blob))
                if sent is not None:
                    self._frame_ms.append((time.monotonic() - sent) * 1e3)
                self._received_stamp = max(self._received_stamp, res.stamp)
                self._restarting = msg.get('restarting') is True
                if res.stamp >= self._delivered_stamp and (self._pending is None or res.stamp >= self._pending.stamp):
                    self._pending = res  # Only the newest frame is kept.
        elif kind == 'pong':
            t = msg.get('t')
            if isinstance(t, int | float):
                with self._lock:
                    self._rtt_ms.append(max(0.0, (time.monotonic() - float(t)) * 1e3))
        elif kind == 'files':
            root, runs = msg.get('root'), msg.get('runs')
            ok = isinstance(root, str) and isinstance(runs, list)
            with self._lock:
                self._files = (str(root), _checked_runs(runs)) if ok else None
                self._files_error = None if ok else 'the server sent a malformed file list'
        elif kind == 'bye':
            raise OSError('the server said bye')


def _checked_runs(runs: Any) -> list[tuple[str, list[str]]]:
    out = []
    for item in runs[: wire.MAX_SEQ_LEN]:
        if (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], list)
            and all(isinstance(p, str) for p in item[1])
        ):
            out.append((item[0][: wire.MAX_STR_LEN], [p[: wire.MAX_STR_LEN] for p in item[1][: wire.MAX_SEQ_LEN]]))
    return out


def _reason(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return 'connection refused: is python -m engine.serve running there?'
    if isinstance(e, TimeoutError | socket.timeout):
        return 'timed out'
    return str(e) or type(e).__name__


__all__ = ['RemoteRenderer', 'parse_address', 'read_token_file']
