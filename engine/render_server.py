"""The render server's socket side: authentication, limits and one rendering session at a time.

:class:`RenderServer` accepts connections on a listening socket, gives each a thread that checks its hello (token,
protocol version) and then runs a ``_Session`` for the one client allowed to render: it reads the client's
``engine.wire`` messages, checks them (types by ``engine.wire``, values by ``engine.protocol`` like every local
request, paths by ``engine.server_files``), drives the shared ``AsyncRenderer`` and sends back the newest results.
The command line is ``engine.serve``, whose docstring says what a client can reach.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import ipaddress
import json
import logging
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine import protocol, wire
from engine.protocol import RenderRequest, RenderResult
from engine.server_files import confine_source, list_server_files
from engine.wire import WireError

logger = logging.getLogger(__name__)

_BUSY_POLL_SEC = 0.001  # How often a session looks for the renderer's result while a request is in flight.
_IDLE_POLL_SEC = 0.05
_RESULT_FIELDS = {f.name for f in dataclasses.fields(RenderResult)}


@dataclass(frozen=True)
class ServerConfig:
    """Settings of :class:`RenderServer`.

    Attributes:
        host: address to bind; loopback by default (anything else is reachable from the network: use a tunnel).
        port: TCP port (0: any free port; :attr:`RenderServer.address` tells which).
        token: the access token every client must present.
        device: the renderer's device for requests whose device is 'auto'.
        root: only network files under this directory (after resolving links) and http(s) URLs load; None: any
            file the server's user can read. Browse lists .pkl files under it (else under the working directory).
        allow_trust: accept ``trust=True`` requests (runs code embedded in pickles) from clients.
        separate_process: render in a separate process (survives crashes of the render code).
        max_rate_per_sec: messages per second a client may send on average (bursts of twice as many); more closes
            the connection with a 'rate' error.
        max_pending: connections that may be in the handshake at once; more are closed at once.
        auth_fail_delay_sec: how long a wrong token waits before its 'auth' error and close.
        handshake_timeout_sec: time a new connection has to send its hello.
        idle_timeout_sec: a client silent this long (it pings every second) is dropped.
        read_timeout_sec: a message that stays incomplete this long (truncated) closes the connection.
        send_timeout_sec: a client that does not read a frame within this long is dropped.
        request_log: test hook: append every accepted request as a JSON line to this file.
    """

    host: str = '127.0.0.1'
    port: int = wire.DEFAULT_PORT
    token: str = ''
    device: str = 'auto'
    root: str | None = None
    allow_trust: bool = False
    separate_process: bool = True
    max_rate_per_sec: float = 200.0
    max_pending: int = 8
    auth_fail_delay_sec: float = 2.0
    handshake_timeout_sec: float = 10.0
    idle_timeout_sec: float = 60.0
    read_timeout_sec: float = 10.0
    send_timeout_sec: float = 30.0
    request_log: str | None = None


def generate_token() -> str:
    """A fresh access token: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback IP addresses."""
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_request(req: RenderRequest) -> RenderRequest:
    """The value checks of ``engine.protocol`` that every request gets, local or remote (types were checked by
    ``wire.request_from_wire``): what no network can render (``request_errors``) and numbers outside the legal
    ranges (``clamp_request``; the GUI clamps before sending, the renderer refuses the same values).

    Raises:
        WireError: 'field' naming every problem and the legal range.
    """
    errors_of = getattr(protocol, 'request_errors', None)
    clamp = getattr(protocol, 'clamp_request', None)
    problems = list(errors_of(req)) if errors_of is not None else []
    if clamp is not None and not problems:
        problems += list(clamp(req)[1])
    if problems:
        raise WireError('field', 'request: ' + '; '.join(problems))
    return req


def default_renderer_factory(device: str, separate_process: bool, renderer: str | None = None):
    """The real renderer (``AsyncRenderer``: torch is imported only in the render process or thread); ``renderer``:
    another renderer class 'module:Class' (benchmarks, tests)."""
    from engine.async_renderer import AsyncRenderer

    extra: dict[str, Any] = {} if renderer is None else {'renderer': renderer}
    return AsyncRenderer(device=device, separate_process=separate_process, **extra)


class RenderServer:
    """Accepts connections, authenticates them and serves one client at a time with one shared renderer.

    Args:
        config: the settings.
        renderer_factory: ``(device, separate_process) -> AsyncRenderer``-like object (tests pass stand-ins).

    Call :meth:`start` (binds), then :meth:`serve_forever` (until :meth:`stop`), then :meth:`close`.
    """

    def __init__(self, config: ServerConfig, renderer_factory: Callable[[str, bool], Any] = default_renderer_factory):
        if not config.token:
            raise ValueError('RenderServer(): config.token must be a non-empty string (see generate_token())')
        self.config = config
        self._factory = renderer_factory
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._pending = threading.BoundedSemaphore(max(1, int(config.max_pending)))
        self._active_lock = threading.Lock()
        self._active: tuple[str, float] | None = None  # (peer, since) of the rendering client.
        self._renderer: Any = None
        self.last_result: RenderResult | None = None  # Newest result the renderer delivered (any session).
        self._threads: list[threading.Thread] = []
        self._log_lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound."""
        assert self._sock is not None, 'start() first'
        host, port = self._sock.getsockname()[:2]
        return host, port

    def start(self) -> tuple[str, int]:
        """Binds and listens. Returns (host, port).

        Raises:
            OSError: the address is in use or cannot be bound.
        """
        infos = socket.getaddrinfo(self.config.host, self.config.port, type=socket.SOCK_STREAM)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(16)
        self._sock = sock
        if not is_loopback(self.config.host):
            logger.warning(
                'listening on %s, which other machines can reach: anyone with the token can render and read network '
                'files here; prefer the default 127.0.0.1 with an SSH tunnel',
                self.config.host,
            )
        return self.address

    def serve_forever(self, poll_sec: float = 0.2) -> None:
        """Accepts connections until :meth:`stop` (each is handled in its own thread)."""
        assert self._sock is not None, 'start() first'
        while not self._stop.is_set():
            readable, _, _ = select.select([self._sock], [], [], poll_sec)
            if not readable:
                continue
            try:
                conn, peer = self._sock.accept()
            except OSError:
                continue
            peer_s = f'{peer[0]}:{peer[1]}'
            if not self._pending.acquire(blocking=False):
                logger.warning('refused %s: too many connections in the handshake', peer_s)
                _send_quietly(conn, wire.error_message('busy', 'too many connections; try again later', fatal=True))
                conn.close()
                continue
            t = threading.Thread(target=self._handle, args=(conn, peer_s), name=f'sg3viz-conn-{peer_s}', daemon=True)
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def stop(self) -> None:
        """Asks :meth:`serve_forever` and the sessions to end (thread-safe, e.g. from a signal handler)."""
        self._stop.set()

    def close(self) -> None:
        """Stops serving, waits briefly for the connection threads, closes the renderer and the socket."""
        self._stop.set()
        for t in list(self._threads):
            t.join(timeout=5)
        if self._renderer is not None:
            with contextlib.suppress(Exception):
                self._renderer.close()
            self._renderer = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # ---- one connection -------------------------------------------------------------------------------------------
    def _handle(self, conn: socket.socket, peer: str) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = wire.FrameReader(wire.CLIENT_TO_SERVER)
            try:
                early = self._handshake(conn, peer, reader)
            finally:
                self._pending.release()
            if not self._claim(conn, peer):
                return
            try:
                _Session(self, conn, peer, reader).run(early)
            finally:
                with self._active_lock:
                    self._active = None
        except WireError as e:
            logger.warning('%s: %s', peer, e)
            _send_quietly(conn, wire.error_message(e.code, str(e), fatal=True))
        except OSError as e:
            logger.info('%s: connection lost (%s)', peer, e)
        except Exception:  # Never let one connection take the server down.
            logger.exception('%s: unexpected error', peer)
        finally:
            _close_gracefully(conn)

    def _handshake(self, conn: socket.socket, peer: str, reader: wire.FrameReader) -> list:
        """Reads and checks the hello; returns the messages that came right behind it (handled by the session).

        Raises:
            WireError: no hello in time, not a hello, wrong token, other protocol version.
        """
        deadline = time.monotonic() + self.config.handshake_timeout_sec
        msg = None
        early: list = []
        while msg is None:
            left = deadline - time.monotonic()
            if left <= 0 or self._stop.is_set():
                raise WireError('timeout', 'no hello within the handshake time', fatal=True)
            conn.settimeout(left)
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise OSError('closed during the handshake')
            got = reader.feed(data)
            if got:
                version, msg, _ = got[0]
                early = got[1:]
                wire.check_version(version, 'client')
        if isinstance(msg, WireError):
            raise WireError(msg.code, str(msg), fatal=True)
        if msg.get('type') != 'hello':
            raise WireError('auth', f'the first message must be hello, got {msg.get("type")!r:.40}', fatal=True)
        token = msg.get('token')
        good = isinstance(token, str) and hmac.compare_digest(
            token.encode('utf-8', 'replace'), self.config.token.encode('utf-8')
        )
        if not good:
            logger.warning('%s: wrong access token; closing after %.1f s', peer, self.config.auth_fail_delay_sec)
            self._stop.wait(self.config.auth_fail_delay_sec)
            raise WireError(
                'auth', 'wrong access token (see the token the server printed or its --token-file)', fatal=True
            )
        if isinstance(msg.get('version'), int) and msg['version'] != wire.PROTOCOL_VERSION:
            wire.check_version(msg['version'], 'client')
        return early

    def _claim(self, conn: socket.socket, peer: str) -> bool:
        with self._active_lock:
            if self._active is not None:
                other, since = self._active
                text = (
                    f'server busy: another client ({other}) has been connected since '
                    f'{time.strftime("%H:%M:%S", time.localtime(since))}; one client renders at a time'
                )
                logger.info('%s: %s', peer, text)
                _send_quietly(conn, wire.error_message('busy', text, fatal=True))
                return False
            self._active = (peer, time.time())
        logger.info('%s: connected', peer)
        return True

    def renderer(self) -> Any:
        """The shared renderer (made on first use; it keeps its network cache across sessions)."""
        if self._renderer is None:
            self._renderer = self._factory(self.config.device, self.config.separate_process)
        return self._renderer

    def log_request(self, req: RenderRequest) -> None:
        if self.config.request_log is None:
            return
        line = json.dumps(wire.request_to_wire(req)) + '\n'
        with self._log_lock, open(self.config.request_log, 'a') as f:
            f.write(line)

    def welcome(self) -> dict:
        devices = tuple(self.last_result.available_devices) if self.last_result is not None else ()
        return {
            'type': 'welcome',
            'version': wire.PROTOCOL_VERSION,
            'server': 'sg3viz',
            'allow_trust': bool(self.config.allow_trust),
            'root': self.config.root,
            'devices': list(devices),
        }


def _send_quietly(conn: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        conn.settimeout(1.0)
        conn.sendall(data)


def _close_gracefully(conn: socket.socket, linger_sec: float = 0.5, max_bytes: int = 1 << 20) -> None:
    """Closes after the peer has had a chance to read our last message: closing with unread input would send a
    reset that can destroy the error message still in flight. Reads and discards at most ``max_bytes`` for at most
    ``linger_sec``."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + linger_sec
        left = max_bytes
        while left > 0:
            wait = deadline - time.monotonic()
            if wait <= 0:
                break
            conn.settimeout(wait)
            data = conn.recv(65536)
            if not data:
                break
            left -= len(data)
    with contextlib.suppress(OSError):
        conn.close()


class _Session:
    """The authenticated client: reads its messages, drives the renderer, sends the newest results."""

    def __init__(self, server: RenderServer, conn: socket.socket, peer: str, reader: wire.FrameReader):
        self.server = server
        self.cfg = server.config
        self.conn = conn
        self.peer = peer
        self.reader = reader
        self.encoding = wire.FrameEncoding()
        self.stamps: dict[int, int] = {}  # server stamp -> client stamp
        self.sources: dict[str, str] = {}  # confined source -> the client's text
        self.allowance = 2.0 * self.cfg.max_rate_per_sec  # token bucket
        self.last_fill = time.monotonic()

    def send(self, msg: dict, blob: bytes = b'') -> None:
        self.conn.settimeout(self.cfg.send_timeout_sec)
        self.conn.sendall(wire.encode_message(msg, blob))

    def error(self, code: str, text: str, *, fatal: bool = False) -> None:
        self.send({'type': 'error', 'code': code, 'message': text, 'fatal': fatal})

    def run(self, early: list) -> None:
        """Serves until the client leaves, the server stops or a fatal error (raised as WireError / OSError).

        Args:
            early: messages that arrived together with the hello.
        """
        self.send(self.server.welcome())
        for version, msg, _blob in early:
            if not self._handle(version, msg):
                return
        last_heard = frame_started = time.monotonic()
        while not self.server._stop.is_set():
            r = self.server._renderer
            busy = r is not None and bool(r.is_busy)
            readable, _, _ = select.select([self.conn], [], [], _BUSY_POLL_SEC if busy else _IDLE_POLL_SEC)
            now = time.monotonic()
            if readable:
                data = self.conn.recv(65536)
                if not data:
                    logger.info('%s: disconnected', self.peer)
                    return
                if not self.reader.mid_frame:
                    frame_started = now
                last_heard = now
                for version, msg, _blob in self.reader.feed(data):  # Fatal framing errors propagate (closed).
                    if not self._handle(version, msg):
                        return
            elif now - last_heard > self.cfg.idle_timeout_sec:
                raise WireError('timeout', f'no message for {self.cfg.idle_timeout_sec:.0f} s; closing', fatal=True)
            if self.reader.mid_frame and now - frame_started > self.cfg.read_timeout_sec:
                raise WireError('size', 'truncated message: the rest never came', fatal=True)
            self._forward_result()

    def _rate_ok(self) -> bool:
        now = time.monotonic()
        rate = self.cfg.max_rate_per_sec
        self.allowance = min(2.0 * rate, self.allowance + (now - self.last_fill) * rate)
        self.last_fill = now
        self.allowance -= 1.0
        return self.allowance >= 0

    def _handle(self, version: int, msg: dict | WireError) -> bool:
        """Handles one message; returns False to end the session."""
        wire.check_version(version, 'client')
        if not self._rate_ok():
            raise WireError('rate', f'more than {self.cfg.max_rate_per_sec:g} messages per second; closing', fatal=True)
        if isinstance(msg, WireError):
            self.error(msg.code, str(msg))
            return True
        kind = msg['type']
        try:
            if kind == 'render':
                self._on_render(msg)
            elif kind == 'encoding':
                _only(msg, ('codec', 'quality'))
                try:
                    self.encoding = wire.FrameEncoding(codec=msg.get('codec', ''), quality=msg.get('quality', 0))
                except ValueError as e:
                    raise WireError('field', str(e)) from None
            elif kind == 'ping':
                _only(msg, ('t',))
                self.send({'type': 'pong', 't': wire._from_json(msg.get('t'), float, 't', 0)})
            elif kind == 'list_files':
                _only(msg, ())
                root, runs = list_server_files(self.cfg.root)
                self.send({'type': 'files', 'root': root, 'runs': runs})
            elif kind == 'separate_process':
                _only(msg, ('value',))
                self._on_separate_process(wire._from_json(msg.get('value'), bool, 'value', 0))
            elif kind == 'bye':
                logger.info('%s: said bye', self.peer)
                return False
            else:
                raise WireError('type', f'unknown message type {kind!r:.40}')
        except WireError as e:
            if e.fatal:
                raise
            logger.info('%s: refused a %s message: %s', self.peer, kind, e)
            self.error(e.code, str(e))
        return True

    def _on_render(self, msg: dict) -> None:
        _only(msg, ('stamp', 'request'))
        stamp = wire._from_json(msg.get('stamp'), int, 'stamp', 0)
        if stamp <= 0:
            raise WireError('field', f'stamp must be a positive integer, got {stamp}')
        req = validate_request(wire.request_from_wire(msg.get('request')))
        self.server.log_request(req)
        if req.trust and not self.cfg.allow_trust:
            self._send_error_result(
                stamp,
                'This server refuses trust=True for remote clients (it runs code embedded in the pickle on the '
                'server). Start the server with --allow-trust to allow it.',
                req.pkl,
            )
            return
        try:
            source = confine_source(req.pkl, self.cfg.root)
        except WireError as e:
            self._send_error_result(stamp, str(e), req.pkl)
            return
        if source is not None and source != req.pkl:
            self.sources[source] = req.pkl or ''
        r = self.server.renderer()
        before = r.last_stamp
        r.set_request(req.replace(pkl=source))
        now = r.last_stamp
        last = self.server.last_result
        if now == before and last is not None and last.stamp == now:
            self._send_result(last, stamp)  # The same request as the one just answered (e.g. after a reconnect).
            return
        self.stamps[now] = stamp
        for old in [s for s in self.stamps if s < now - 64]:
            del self.stamps[old]

    def _on_separate_process(self, value: bool) -> None:
        r = self.server.renderer()
        before = r.last_stamp
        r.set_separate_process(value)
        if r.last_stamp != before and before in self.stamps:
            self.stamps[r.last_stamp] = self.stamps[before]

    def _forward_result(self) -> None:
        r = self.server._renderer
        if r is None:
            return
        res = r.get_result()
        if res is None:
            return
        self.server.last_result = res
        client_stamp = self.stamps.get(res.stamp)
        if client_stamp is None:  # A notice (render process restarted): answer the newest request before it.
            older = [s for s in self.stamps if s <= res.stamp]
            if not older:
                return  # A result for a previous session.
            client_stamp = self.stamps[max(older)]
        self._send_result(res, client_stamp)

    def _send_result(self, res: RenderResult, client_stamp: int) -> None:
        """Sends ``res`` as the answer to ``client_stamp``, with the client's own text for a confined source."""
        if res.net is not None and res.net.pkl in self.sources:
            res = dataclasses.replace(res, net=dataclasses.replace(res.net, pkl=self.sources[res.net.pkl]))
        source = getattr(res, 'source', None)
        if source in self.sources:
            res = dataclasses.replace(res, source=self.sources[source])
        msg, blob = wire.result_to_wire(res, client_stamp, self.encoding)
        r = self.server._renderer
        msg['restarting'] = bool(getattr(r, 'is_restarting', False)) if r is not None else False
        self.send(msg, blob)

    def _send_error_result(self, stamp: int, text: str, source: str | None) -> None:
        """Answers a refused request: a result whose load of ``source`` failed with ``text``."""
        last = self.server.last_result
        kw: dict[str, Any] = {'available_devices': tuple(last.available_devices) if last is not None else ()}
        if 'load_failed' in _RESULT_FIELDS:
            kw.update(source=source, load_failed=True)
        self._send_result(RenderResult(stamp=stamp, error=text, **kw), stamp)


def _only(msg: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(msg) - {'type', *allowed})
    if unknown:
        raise WireError('field', f'{msg["type"]} message has unknown field(s) {unknown}; known: {list(allowed)}')


__all__ = [
    'RenderServer',
    'ServerConfig',
    'default_renderer_factory',
    'generate_token',
    'is_loopback',
    'validate_request',
]
