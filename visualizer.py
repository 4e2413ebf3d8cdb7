#!/usr/bin/env python3
"""Interactive StyleGAN3 / StyleGAN2 visualizer: live generator output, layer activations and their spectra.

Thin command-line entry: parses and validates options, then runs ``viz.Visualizer``.
"""

from __future__ import annotations

import logging
import pathlib
import re
import sys

import click

REPO = pathlib.Path(__file__).resolve().parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from engine.cli_types import FiniteFloatRange  # noqa: E402


def parse_window_size(value: str) -> tuple[int, int]:
    """'1600x1000' -> (1600, 1000).

    Raises:
        ValueError: not WxH with both sides in 200..16384.
    """
    m = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', value or '')
    if not m:
        raise ValueError(f'--window must be WIDTHxHEIGHT like 1600x1000, got {value!r}')
    w, h = int(m.group(1)), int(m.group(2))
    if not (200 <= w <= 16384 and 200 <= h <= 16384):
        raise ValueError(f'--window sides must be in 200..16384 pixels, got {w}x{h}')
    return w, h


def screenshot_script(path: str, timeout_sec: float) -> list[dict]:
    """Steps of ``--screenshot``: wait for the first result to be displayed, a few more frames, save, exit."""
    return [
        {'wait_result': True, 'timeout_sec': timeout_sec},
        {'wait_frames': 3},
        {'screenshot': path},
        {'wait_frames': 1},
    ]


def remote_renderer_factory(connect: str, token: str | None, token_file: str | None):
    """``renderer_factory`` for ``--connect``: validates the address and token now, connects when called.

    Raises:
        click.BadParameter: bad address, no token, both --token and --token-file, unreadable token file.
    """
    from engine.remote_client import RemoteRenderer, parse_address, read_token_file

    try:
        parse_address(connect)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint='--connect') from e
    if (token is None) == (token_file is None):
        raise click.BadParameter(
            "give the server's access token with exactly one of --token TOKEN or --token-file PATH",
            param_hint='--token',
        )
    if token_file is not None:
        try:
            token = read_token_file(token_file)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint='--token-file') from e
    assert token is not None
    if not token.strip():
        raise click.BadParameter('--token must not be empty', param_hint='--token')
    return lambda device, separate_process: RemoteRenderer(connect, token)


def _script_steps(script_path: str | None, screenshot: str | None, screenshot_timeout: float) -> list[dict] | None:
    """The script hook's steps: ``--script``'s, then ``--screenshot``'s (None: no script).

    Raises:
        click.BadParameter: an invalid script file.
    """
    script = None
    if script_path is not None:
        from viz.script import load_script

        try:
            script = load_script(script_path)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint='--script') from e
    if screenshot is not None:
        script = (script or []) + screenshot_script(screenshot, screenshot_timeout)
    return script


def _renderer_kwargs(connect: str | None, token: str | None, token_file: str | None) -> dict:
    """``Visualizer(renderer_factory=...)``: an embedding program's (the click context's ``obj``, e.g. the GUI tests'),
    else the remote renderer of ``--connect``, else none (the local render process).

    Raises:
        click.BadParameter: a token without --connect, or a bad --connect address / token.
    """
    kwargs = {}
    if connect is not None:
        kwargs['renderer_factory'] = remote_renderer_factory(connect, token, token_file)
    elif token is not None or token_file is not None:
        raise click.BadParameter('--token and --token-file go with --connect HOST:PORT', param_hint='--token')
    obj = click.get_current_context().obj
    if isinstance(obj, dict) and obj.get('renderer_factory') is not None:
        kwargs['renderer_factory'] = obj['renderer_factory']  # An embedding program's renderer (the GUI tests').
    return kwargs


@click.command(context_settings={'help_option_names': ['-h', '--help']})
@click.argument('pkls', nargs=-1, metavar='[PKL]...')
@click.option(
    '--capture-dir',
    default='captures',
    show_default=True,
    metavar='DIR',
    type=click.Path(file_okay=False),
    help='Where Capture saves numbered PNGs and JSON sidecars.',
)
@click.option(
    '--browse-dir',
    default=None,
    metavar='DIR',
    type=click.Path(exists=True, file_okay=False),
    help='Directory of training runs listed by the Browse button.',
)
@click.option(
    '--device',
    default='auto',
    show_default=True,
    metavar='NAME',
    type=click.Choice(['auto', 'cuda', 'mps', 'cpu']),
    help='Render device (auto: cuda -> mps -> cpu).',
)
@click.option('--trust', is_flag=True, help='Load pickles with trust=True (runs code embedded in them).')
@click.option(
    '--ui-scale',
    default=1.0,
    show_default=True,
    metavar='X',
    type=FiniteFloatRange(0.25, 4.0),
    help='User UI scale, multiplied with the monitor content scale.',
)
@click.option(
    '--window',
    'window',
    default='1600x1000',
    show_default=True,
    metavar='WxH',
    help='Initial window size in screen coordinates.',
)
@click.option(
    '--screenshot',
    default=None,
    metavar='PNG',
    type=click.Path(dir_okay=False),
    help='Render until the first result is shown, save the whole window as PNG and exit.',
)
@click.option(
    '--screenshot-timeout',
    default=600.0,
    show_default=True,
    metavar='SEC',
    type=FiniteFloatRange(1),
    help='Give up waiting for the first result after this many seconds (exit code 1).',
)
@click.option('--in-process', is_flag=True, help='Render in the GUI process instead of a separate render process.')
@click.option(
    '--fps-limit',
    default=60,
    show_default=True,
    metavar='FPS',
    type=click.IntRange(5, 1000),
    help='GUI frame-rate cap.',
)
@click.option(
    '--script',
    'script_path',
    default=None,
    metavar='JSON',
    type=click.Path(exists=True, dir_okay=False),
    help='Test hook: JSON list of per-frame steps (see viz/script.py); exits when done.',
)
@click.option(
    '--w',
    'w_file',
    default=None,
    metavar='NPZ|NPY',
    type=click.Path(exists=True, dir_okay=False),
    help='Start on this latent (w/ws of [num_ws, w_dim], [1, num_ws, w_dim] or [w_dim], e.g. a projector .npz).',
)
@click.option(
    '--connect',
    default=None,
    metavar='HOST:PORT',
    help='Render on a server started with `python -m engine.serve` (this side needs no torch).',
)
@click.option('--token', default=None, metavar='TOKEN', help='Access token the server printed (with --connect).')
@click.option(
    '--token-file',
    default=None,
    metavar='PATH',
    type=click.Path(dir_okay=False),
    help="Read the access token from this file (the server's --token-file).",
)
@click.option('--verbose', '-v', is_flag=True, help='Log debug messages.')
def main(
    pkls,
    capture_dir,
    browse_dir,
    device,
    trust,
    ui_scale,
    window,
    screenshot,
    screenshot_timeout,
    in_process,
    fps_limit,
    script_path,
    w_file,
    connect,
    token,
    token_file,
    verbose,
):
    """Open the visualizer on PKL (path, URL or training-run dir; default: the bundled network).

    \b
    Examples:
      python visualizer.py
      python visualizer.py training-runs/00000-stylegan3-t-ffhq/network-snapshot-000400.pkl
      python visualizer.py https://example.org/net.pkl --device cpu --ui-scale 1.5
      python visualizer.py --browse-dir training-runs --capture-dir out/captures
      python visualizer.py --screenshot out/visualizer.png --window 1280x800
      python visualizer.py net.pkl --w projected_w.npz
      python visualizer.py --connect localhost:7600 --token-file sg3viz-token
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format='%(levelname)s: %(message)s')
    try:
        window_size = parse_window_size(window)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint='--window') from e
    script = _script_steps(script_path, screenshot, screenshot_timeout)
    kwargs = _renderer_kwargs(connect, token, token_file)
    from gui_utils.glfw_window import DisplayError, display_problem

    problem = display_problem()
    if problem is not None:
        raise click.ClickException(f'cannot open the visualizer window: {problem}')
    from viz.visualizer import Visualizer

    try:
        app = Visualizer(
            pkls=list(pkls),
            capture_dir=capture_dir,
            browse_dir=browse_dir,
            device=device,
            trust=trust,
            ui_scale=ui_scale,
            window_size=window_size,
            separate_process=not in_process,
            script=script,
            fps_limit=fps_limit,
            **kwargs,
        )
    except DisplayError as e:
        raise click.ClickException(f'cannot open the visualizer window: {e}') from e
    if w_file is not None:
        app.latent.load_w(w_file)  # waits for the network; errors show in the Latent pane
    code = app.run()
    if screenshot is not None and code == 0:
        click.echo(f'Saved {screenshot}')
    sys.exit(code)


if __name__ == '__main__':
    main()
