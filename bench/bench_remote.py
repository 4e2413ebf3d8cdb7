#!/usr/bin/env python3
"""Benchmark: what remote rendering over loopback adds per frame, against the local separate-process renderer.

In one run, on one machine: a render server (``python -m engine.serve`` on 127.0.0.1, separate render process) and a
local ``AsyncRenderer`` (separate render process) both serve the same stand-in renderer (:class:`FrameRenderer`: a
fixed smooth, detailed RGB frame of 64, 256 or 1024 px shifted per seed, so generation costs ~nothing and both paths
pay the same for it). For each size and path, frames are requested one after another (the next request when the
previous frame arrived) and timed from ``set_request`` to the decoded result in this process:

- ``local``: GUI process <- render process (pipe + shared memory);
- ``remote <codec>``: client <- socket <- server <- render process, frames encoded lossless (PNG) or lossy (JPEG,
  quality ``--quality``) by the server and decoded by the client;
- ``remote jpeg, srv thread``: the same with the server rendering in a thread (``engine.serve --in-process``).

Prints per size and path the median and mean ms/frame, frames/s, bytes/frame, the remote/local ratio and the ms
added over local; and the round-trip time of a ping. Target (issue 16): at 1024 px lossy the remote path adds at
most 15 ms per frame over local.

Example:
    python bench/bench_remote.py
    python bench/bench_remote.py --frames 40 --sizes 256,1024 --quality 80
"""

from __future__ import annotations

import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import click
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from engine.protocol import NetInfo, RenderRequest, RenderResult  # noqa: E402

SPEC = 'bench.bench_remote:FrameRenderer'
TARGET_ADDED_MS = 15.0


def _base_frame(size: int) -> np.ndarray:
    """A smooth frame with fine detail (like a generator's output): sinusoids plus mild noise, uint8 [S, S, 3]."""
    rng = np.random.default_rng(size)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) * (64.0 / size)
    img = np.stack(
        [
            128 + 90 * np.sin(x / 3.1 + np.cos(y / 5.3)),
            128 + 90 * np.cos(y / 2.7 - np.sin(x / 4.1)),
            128 + 70 * np.sin((x + y) / 3.7),
        ],
        axis=-1,
    )
    img += rng.normal(0, 4, img.shape)
    return img.clip(0, 255).astype(np.uint8)


class FrameRenderer:
    """Stand-in renderer (``try_render``) for ``AsyncRenderer(renderer=SPEC)``: request ``pkl='bench://SIZE'`` ->
    the base frame of SIZE px (any other source: 256 px) rolled by the first seed. Costs a copy of the frame, the
    same in both paths."""

    def __init__(self, device: str = 'cpu'):
        self.device = device
        self._frames: dict[int, np.ndarray] = {}

    def try_render(self, req: RenderRequest) -> RenderResult:
        t0 = time.perf_counter()
        tail = str(req.pkl).rsplit('/', 1)[-1]
        size = int(tail) if str(req.pkl).startswith('bench://') and tail.isdigit() else 256
        if size not in self._frames:
            self._frames[size] = _base_frame(size)
        seed = int(req.w0_seeds[0][0]) if req.w0_seeds else 0
        img = np.roll(self._frames[size], seed % size, axis=1)
        ms = (time.perf_counter() - t0) * 1e3
        net = NetInfo(
            pkl=req.pkl or '',
            resolved_path=str(req.pkl),
            arch='stylegan3',
            img_resolution=size,
            img_channels=3,
            z_dim=8,
            c_dim=0,
            w_dim=8,
            num_ws=4,
            has_noise=False,
            has_input_transform=False,
        )
        return RenderResult(stamp=req.stamp, image=img, net=net, render_ms=ms, device='cpu', source=req.pkl)

    render = try_render


def _frame(r, req: RenderRequest, timeout_sec: float = 60.0) -> float:
    """Milliseconds from set_request to the result of that request."""
    t0 = time.perf_counter()
    stamp = r.set_request(req)
    if stamp is None:  # An AsyncRenderer without the stamp-returning set_request.
        stamp = r.last_stamp
    while True:
        res = r.get_result()
        if res is not None and res.stamp >= stamp:
            if res.error:
                raise click.ClickException(f'render failed: {res.error}')
            return (time.perf_counter() - t0) * 1e3
        if time.perf_counter() - t0 > timeout_sec:
            raise click.ClickException('no result within 60 s')
        time.sleep(0.0002)


def _start_server(tmp: pathlib.Path) -> tuple[subprocess.Popen, str, str]:
    token_file = tmp / 'token'
    cmd = [sys.executable, '-m', 'engine.serve', '--port', '0', '--device', 'cpu', '--token-file', str(token_file)]
    proc = subprocess.Popen(
        [*cmd, '--renderer', SPEC], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if 'listening on' in line:
            address = line.split('listening on ')[1].split()[0]
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
            return proc, address, token_file.read_text().strip()
    proc.kill()
    raise click.ClickException('the render server did not start')


def run_bench(sizes: list[int], num_frames: int, quality: int, rounds: int) -> list[dict]:
    """Measures every (size, path); returns one dict per row."""
    from engine.async_renderer import AsyncRenderer
    from engine.remote_client import RemoteRenderer

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, address, token = _start_server(pathlib.Path(tmp))
        local = AsyncRenderer(device='cpu', separate_process=True, renderer=SPEC)
        remote = RemoteRenderer(address, token)
        paths = {
            'local': (local, None, True),
            'remote png': (remote, 'png', True),
            f'remote jpeg q{quality}': (remote, 'jpeg', True),
            'remote jpeg, srv thread': (remote, 'jpeg', False),  # The server renders in a thread (--in-process).
        }
        seed = 1
        try:
            for size in sizes:
                times: dict[str, list[float]] = {name: [] for name in paths}
                nbytes: dict[str, list[float]] = {name: [] for name in paths}
                for rnd in range(rounds + 1):  # Round 0 warms up (process start, first frames).
                    for name, (r, codec, separate) in paths.items():
                        if codec is not None:
                            r.set_frame_encoding(codec, quality)
                            r.set_separate_process(separate)
                            _frame(r, RenderRequest(pkl=f'bench://{size}', w0_seeds=((seed, 1.0),)))
                            seed += 1
                        per_round = max(1, num_frames // rounds) if rnd else 3
                        for _ in range(per_round):
                            ms = _frame(r, RenderRequest(pkl=f'bench://{size}', w0_seeds=((seed, 1.0),)))
                            seed += 1
                            if rnd:
                                times[name].append(ms)
                                if codec is not None:
                                    nbytes[name].append(remote.link_stats()['last_frame_bytes'])
                base = statistics.median(times['local'])
                for name in paths:
                    med = statistics.median(times[name])
                    rows.append(
                        {
                            'size': size,
                            'path': name,
                            'median_ms': med,
                            'mean_ms': statistics.fmean(times[name]),
                            'fps': 1e3 / statistics.fmean(times[name]),
                            'kib': (statistics.fmean(nbytes[name]) / 1024) if nbytes[name] else size * size * 3 / 1024,
                            'added_ms': med - base,
                            'ratio': med / base,
                        }
                    )
            rtt = remote.link_stats()['rtt_ms']
        finally:
            remote.close()
            local.close()
            proc.terminate()
            proc.wait(timeout=30)
    rows.append({'rtt_ms': rtt})
    return rows


@click.command()
@click.option('--sizes', default='64,256,1024', show_default=True, metavar='PX,...', help='Frame sizes.')
@click.option(
    '--frames',
    'num_frames',
    default=30,
    show_default=True,
    metavar='N',
    type=click.IntRange(3, 10000),
    help='Timed frames per size and path.',
)
@click.option(
    '--quality',
    default=90,
    show_default=True,
    metavar='Q',
    type=click.IntRange(1, 100),
    help='JPEG quality of the lossy path.',
)
@click.option(
    '--rounds',
    default=3,
    show_default=True,
    metavar='N',
    type=click.IntRange(1, 100),
    help='Interleaved rounds (less drift on a shared machine).',
)
def main(sizes: str, num_frames: int, quality: int, rounds: int):
    """Remote rendering over loopback vs the local separate-process renderer, same run."""
    try:
        size_list = [int(s) for s in sizes.split(',') if s.strip()]
    except ValueError as e:
        raise click.BadParameter(f'--sizes must be comma-separated integers, got {sizes!r}') from e
    if not size_list or any(not 16 <= s <= 4096 for s in size_list):
        raise click.BadParameter(f'--sizes must be in 16..4096, got {sizes!r}')
    rows = run_bench(size_list, num_frames, quality, rounds)
    rtt = rows.pop()['rtt_ms']
    print(f'loopback ping round trip: {rtt:.2f} ms')
    print(
        f'{"size":>6} {"path":<24} {"median ms":>10} {"mean ms":>9} {"fps":>7} {"KiB/frame":>10} {"x local":>8} {"added ms":>9}'
    )
    for r in rows:
        print(
            f'{r["size"]:>6} {r["path"]:<24} {r["median_ms"]:>10.2f} {r["mean_ms"]:>9.2f} {r["fps"]:>7.1f} '
            f'{r["kib"]:>10.1f} {r["ratio"]:>8.2f} {r["added_ms"]:>9.2f}'
        )
    lossy = [r for r in rows if r['size'] == 1024 and r['path'] == f'remote jpeg q{quality}']
    if lossy:
        added = lossy[0]['added_ms']
        verdict = 'meets' if added <= TARGET_ADDED_MS else 'misses'
        print(f'1024 px lossy adds {added:.2f} ms/frame over local: {verdict} the target (<= {TARGET_ADDED_MS:g} ms)')


if __name__ == '__main__':
    main()
