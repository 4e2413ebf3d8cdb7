"""The render server: the renderer behind a socket, for a visualizer on another machine (``--connect``).

``python -m engine.serve`` runs the same renderer as the local visualizer (``engine.async_renderer.AsyncRenderer``:
a separate render process, the network cache, stale-request dropping, cancellable loads) and speaks the
``engine.wire`` protocol (JSON + compressed images, never pickle) to one client at a time.

What the server exposes to a client that holds the token: rendering with any network file the server's user can
read (only files under ``--root`` when given, after resolving links), any http(s) URL (downloaded into the server's
cache), the names of .pkl files under the root (or the working directory) for Browse, the server's device names and
error tracebacks. It never unpickles data from the socket; ``trust=True`` (which runs code embedded in a network
pickle) is refused unless the server was started with ``--allow-trust``.

Security and limits (see :class:`ServerConfig`): binds 127.0.0.1 unless told otherwise; every connection must send
the access token first (constant-time comparison; a wrong token is answered after a delay, logged, and closed);
message size, message rate, handshake time, idle time and the number of connections are bounded. One client
renders at a time: a second client gets a ``busy`` error naming the connected one, and is closed (its GUI keeps
retrying, so it takes over when the first one leaves).

Example::

    python -m engine.serve --port 7600 --token-file ~/.sg3viz-token
    # on the laptop: ssh -L 7600:localhost:7600 server, then
    python visualizer.py --connect localhost:7600 --token-file sg3viz-token
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from engine import wire
from engine.render_server import (
    RenderServer,
    ServerConfig,
    default_renderer_factory,
    generate_token,
    is_loopback,
    validate_request,
)
from engine.server_files import confine_source, list_server_files
from engine.token_files import read_token_file, write_token_file

__all__ = [
    'RenderServer',
    'ServerConfig',
    'confine_source',
    'generate_token',
    'is_loopback',
    'list_server_files',
    'main',
    'read_token',
    'run_server',
    'validate_request',
    'write_token_file',
]


def read_token(path: str) -> str | None:
    """The token in an existing token file (None when the file is missing, unreadable or empty)."""
    try:
        return read_token_file(path)
    except ValueError:
        return None


def run_server(
    config: ServerConfig,
    *,
    token_file: str | None = None,
    announce: Callable[[str], None] = print,
    renderer_factory: Callable[[str, bool], Any] | None = None,
) -> None:
    """Starts a :class:`RenderServer`, announces its address and token, serves until SIGINT/SIGTERM."""
    server = RenderServer(config, renderer_factory or default_renderer_factory)
    host, port = server.start()
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda *_: server.stop())
    try:
        if token_file is not None:
            write_token_file(token_file, config.token)
        announce(f'sg3viz render server listening on {host}:{port} (protocol v{wire.PROTOCOL_VERSION})')
        announce(f'Access token: {config.token}' + (f' (also written to {token_file})' if token_file else ''))
        announce(f'Connect with: python visualizer.py --connect {host}:{port} --token {config.token}')
        server.serve_forever()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()
        announce('sg3viz render server stopped')


@click.command(context_settings={'help_option_names': ['-h', '--help']})
@click.option('--host', default='127.0.0.1', show_default=True, metavar='ADDR', help='Address to listen on.')
@click.option(
    '--port',
    default=wire.DEFAULT_PORT,
    show_default=True,
    metavar='PORT',
    type=click.IntRange(0, 65535),
    help='TCP port (0: any free port).',
)
@click.option(
    '--device', default='auto', show_default=True, metavar='NAME', help='Render device: auto, cpu, cuda, cuda:N, mps.'
)
@click.option(
    '--root',
    default=None,
    metavar='DIR',
    type=click.Path(exists=True, file_okay=False),
    help='Only load network files under DIR (after resolving links) and http(s) URLs; Browse lists DIR.',
)
@click.option('--allow-trust', is_flag=True, help='Let clients load pickles with trust=True (runs their code here).')
@click.option(
    '--token-file',
    default=None,
    metavar='PATH',
    type=click.Path(dir_okay=False),
    help='Also write the access token here (mode 0600).',
)
@click.option(
    '--reuse-token',
    is_flag=True,
    help='With --token-file: keep the token already in that file (clients reconnect after a restart).',
)
@click.option('--in-process', is_flag=True, help='Render in a thread of the server instead of a separate process.')
@click.option(
    '--max-rate',
    default=200.0,
    show_default=True,
    metavar='MSG/S',
    type=click.FloatRange(1.0, 10000.0),
    help='Messages per second a client may send (bursts of twice as many).',
)
@click.option('--request-log', default=None, metavar='JSONL', hidden=True, help='Test hook: log accepted requests.')
@click.option(
    '--renderer',
    'renderer_spec',
    default=None,
    metavar='MODULE:CLASS',
    hidden=True,
    help='Benchmark/test hook: the render process runs this renderer class instead of engine.renderer:Renderer.',
)
@click.option('--verbose', '-v', is_flag=True, help='Log debug messages.')
def main(
    host,
    port,
    device,
    root,
    allow_trust,
    token_file,
    reuse_token,
    in_process,
    max_rate,
    request_log,
    renderer_spec,
    verbose,
):
    """Serve the renderer to a visualizer on another machine (python visualizer.py --connect HOST:PORT).

    \b
    Examples:
      python -m engine.serve --device cuda --token-file ~/.sg3viz-token
      python -m engine.serve --root training-runs --port 7600
      (laptop)  ssh -N -L 7600:localhost:7600 gpu-server
      (laptop)  python visualizer.py --connect localhost:7600 --token TOKEN
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format='%(asctime)s %(levelname)s: %(message)s'
    )
    if not is_loopback(host):
        click.echo(
            f'WARNING: --host {host} accepts connections from other machines. Anyone who can reach this port and '
            'has the token can render here and read network files. Prefer 127.0.0.1 with an SSH tunnel.',
            err=True,
        )
    token = generate_token()
    if reuse_token:
        if token_file is None:
            raise click.BadParameter('--reuse-token needs --token-file PATH', param_hint='--reuse-token')
        token = read_token(token_file) or token
    config = ServerConfig(
        host=host,
        port=port,
        token=token,
        device=device,
        root=os.path.realpath(root) if root is not None else None,
        allow_trust=allow_trust,
        separate_process=not in_process,
        max_rate_per_sec=max_rate,
        request_log=request_log,
    )
    try:
        run_server(
            config,
            token_file=token_file,
            announce=lambda s: click.echo(s) or sys.stdout.flush(),
            renderer_factory=default_renderer_factory
            if renderer_spec is None
            else functools.partial(default_renderer_factory, renderer=renderer_spec),
        )
    except OSError as e:
        raise click.ClickException(f'cannot listen on {host}:{port}: {e}') from e


if __name__ == '__main__':
    main()
