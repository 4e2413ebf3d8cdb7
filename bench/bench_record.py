#!/usr/bin/env python3
"""Benchmark: offline timeline rendering (what Record / ``gen_video.py --timeline`` do) against the live GUI render
rate, for the bundled 64 px StyleGAN3 net and a 256 px StyleGAN3 net (random weights, same architecture family).

- offline: ``gen_video.render_timeline`` on N recorded states (a latent walk, one new state per frame): render
  through ``engine.renderer.Renderer`` plus H.264 encoding (``engine.recording.render_video_job`` run in-process);
  frames/s of finished video frames.
- job: what the GUI does after Stop: the same states as the render process's ``'render_video'`` job
  (``engine.recording.render_video_job`` through ``AsyncRenderer.start_job``), timed from start to the 'done' update.
  ``render_timeline`` runs that same generator in-process, so offline and job differ only by the process hop.
- live: the GUI's path, ``engine.async_renderer.AsyncRenderer`` (separate render process, frames through shared
  memory), with a new request submitted as soon as the previous result arrives: the best rate at which the GUI can
  show new images while animating (its FPS limit aside).

Prints frames/s of each and the ratios offline / live and job / live (> 1: recording renders faster than the live
view updates, so a recorded video is never limited by the GUI's render rate). All run one after the other in the
same session, so the ratios hold on a shared machine even when the absolute numbers do not.

Threads: offline runs with torch's default thread count (all CPUs), the render process with one CPU fewer
(``engine.render_worker``); on a busy small machine the default oversubscribes the CPUs and offline rendering is
several times slower than it need be: ``OMP_NUM_THREADS=1`` gives both paths one thread (the line printed first says
what offline used).

Example:
    python bench/bench_record.py --frames 24 --device cpu
    OMP_NUM_THREADS=1 python bench/bench_record.py --frames 24 --device cpu
"""

from __future__ import annotations

import pathlib
import pickle
import sys
import tempfile
import time

import click

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _states(pkl: str | None, n: int, device: str):
    from engine.protocol import RenderRequest

    # A latent walk between seeds 0 and 1, like a recorded drag: every frame is a new request.
    return [RenderRequest(pkl=pkl, device=device, w0_seeds=((0, 1 - i / n), (1, i / n))) for i in range(n)]


def _net_256(tmp: pathlib.Path) -> str:
    import torch

    from training import networks_stylegan3

    torch.manual_seed(0)
    G = networks_stylegan3.Generator(
        z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3, channel_base=8192, channel_max=256
    )
    p = tmp / 'sg3-256.pkl'
    p.write_bytes(pickle.dumps({'G_ema': G.eval()}))
    return str(p)


def _offline(pkl, n, device, tmp) -> float:
    import gen_video
    from engine.renderer import Renderer
    from engine.states import make_timeline, write_json

    r = Renderer(device)
    tl = write_json(tmp / 'tl.json', make_timeline(_states(pkl, n + 1, device)[:1], fps=30))
    gen_video.render_timeline(
        tl, str(tmp / 'warm.mp4'), progress=False, renderer=r
    )  # load + first render outside the timing
    tl = write_json(tmp / 'tl.json', make_timeline(_states(pkl, n, device), fps=30))
    t0 = time.perf_counter()
    count = gen_video.render_timeline(tl, str(tmp / 'out.mp4'), progress=False, renderer=r)
    return count / (time.perf_counter() - t0)


def _live(pkl, n, device) -> float:
    from engine.async_renderer import AsyncRenderer

    states = _states(pkl, n + 1, device)
    with AsyncRenderer(device, separate_process=True, spare_process=False) as r:

        def wait(stamp: int) -> None:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                res = r.get_result()
                if res is not None and res.stamp >= stamp:
                    if res.error:
                        raise RuntimeError(res.error)
                    return
                time.sleep(0.0005)
            raise TimeoutError('render process did not answer in 600 s')

        wait(r.set_request(states[0]))  # load + first render outside the timing
        t0 = time.perf_counter()
        for s in states[1:]:
            wait(r.set_request(s))
        return n / (time.perf_counter() - t0)


def _job(pkl, n, device, tmp) -> float:
    from engine.async_renderer import AsyncRenderer

    states = _states(pkl, n + 1, device)
    with AsyncRenderer(device, separate_process=True, spare_process=False) as r:

        def run(batch, output) -> float:
            job_id = r.start_job('render_video', {'states': batch, 'output': str(output), 'fps': 30.0})
            t0 = time.perf_counter()
            deadline = time.monotonic() + 1200
            while time.monotonic() < deadline:
                for u in r.job_updates():
                    if u.job_id == job_id and u.is_final:
                        if u.state != 'done':
                            raise RuntimeError(f'render_video job ended {u.state}: {u.error}')
                        return time.perf_counter() - t0
                time.sleep(0.002)
            raise TimeoutError('render_video job did not finish in 1200 s')

        run(states[:1], tmp / 'job-warm.mp4')  # load + first render outside the timing
        return n / run(states[1:], tmp / 'job.mp4')


@click.command()
@click.option('--frames', type=click.IntRange(min=2, max=10000), default=24, show_default=True)
@click.option('--device', default='cpu', show_default=True, help='cpu, cuda, cuda:N or mps')
@click.option('--skip-256', is_flag=True, help='Only the bundled 64 px net')
def main(frames: int, device: str, skip_256: bool) -> None:
    import torch

    print(f'offline (this process): torch threads {torch.get_num_threads()}')
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        nets = [('bundled 64 px', None)] + ([] if skip_256 else [('SG3 256 px', _net_256(tmp))])
        for name, pkl in nets:
            off = _offline(pkl, frames, device, tmp)
            job = _job(pkl, frames, device, tmp)
            live = _live(pkl, frames, device)
            print(f'{name}: offline {off:.2f} frames/s (render + H.264), job in the render process {job:.2f} frames/s, '
                  f'live GUI render rate {live:.2f} frames/s; ratio offline/live {off / live:.2f}, '
                  f'job/live {job / live:.2f}')  # fmt: skip


if __name__ == '__main__':
    main()
