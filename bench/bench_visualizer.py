#!/usr/bin/env python3
"""Benchmark: GUI responsiveness of the visualizer while the render process is busy.

Opens the visualizer on a network (default: the bundled 64 px StyleGAN3 net) with the latent animation on, so
every GUI frame asks for a new image, and measures for a while:
  - GUI frame time (mean, p95) and FPS against the FPS limit: with the separate render process it should stay near
    the limit while rendering;
  - the end-to-end displayed-frame rate (new images shown per second) against the renderer's own rate
    (1000 / mean render_ms of the results).
Starts its own Xvfb when no DISPLAY is set.

Example:
    python bench/bench_visualizer.py --seconds 30 --device cpu
    python bench/bench_visualizer.py --in-process   # compare: rendering in the GUI process
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import time

import click
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _start_xvfb() -> subprocess.Popen | None:
    if os.environ.get('DISPLAY') or sys.platform != 'linux':
        return None
    exe = shutil.which('Xvfb')
    if exe is None:
        raise click.ClickException('no DISPLAY and no Xvfb: run on a desktop or install xvfb')
    for n in range(150, 250):
        if not os.path.exists(f'/tmp/.X11-unix/X{n}') and not os.path.exists(f'/tmp/.X{n}-lock'):
            break
    proc = subprocess.Popen(
        [exe, f':{n}', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        if os.path.exists(f'/tmp/.X11-unix/X{n}'):
            break
        time.sleep(0.05)
    os.environ['DISPLAY'] = f':{n}'  # this CLI's own process (and its render child)
    return proc


def run_bench(
    pkl: str | None,
    device: str,
    seconds: float,
    fps_limit: int,
    separate_process: bool,
    warmup_sec: float,
    idle_sec: float = 5.0,
) -> dict:
    """Runs the GUI loop; returns the measured numbers."""
    from viz.visualizer import Visualizer

    app = Visualizer(
        pkls=[pkl] if pkl else [],
        device=device,
        window_size=(1280, 800),
        fps_limit=fps_limit,
        separate_process=separate_process,
    )
    try:
        t0 = time.perf_counter()
        while app.view.image is None:  # first image: process start, torch import, network load
            app.frame()
            if app.error_text() and app.net is None and time.perf_counter() - t0 > 5:
                raise click.ClickException(f'render failed: {app.error_text()}')
        first_sec = time.perf_counter() - t0
        # Idle: nothing changes (no input, no animation, no pending result). After the idle gate's grace period the
        # loop waits for events instead of drawing; measure the GUI process's CPU time (all its threads) per second.
        t1 = time.perf_counter()
        while time.perf_counter() - t1 < app.window.idle.grace_sec + 0.5:
            app.frame()
        drawn0 = app.window.frames_drawn
        c1, t1 = time.process_time(), time.perf_counter()
        while time.perf_counter() - t1 < idle_sec:
            app.frame()
        idle_frames = app.window.frames_drawn - drawn0
        idle_cpu_pct = (time.process_time() - c1) / (time.perf_counter() - t1) * 100
        app.latent.set_state({'anim': True, 'speed': 0.5})
        t_end_warm = time.perf_counter() + warmup_sec
        while time.perf_counter() < t_end_warm:
            app.frame()
        frame_ms, render_ms = [], []
        shown = 0
        last_img = app.view.image
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            f0 = time.perf_counter()
            app.frame()
            frame_ms.append((time.perf_counter() - f0) * 1e3)
            if app.view.image is not last_img:
                shown += 1
                last_img = app.view.image
                if app.view.result is not None and app.view.result.render_ms > 0:
                    render_ms.append(app.view.result.render_ms)
        elapsed = time.perf_counter() - t0
    finally:
        app.close()
    fm = np.asarray(frame_ms)
    return {
        'first_image_sec': first_sec,
        'idle_cpu_pct': idle_cpu_pct,
        'idle_frames_drawn': idle_frames,
        'idle_sec': idle_sec,
        'gui_frames': len(fm),
        'gui_frame_ms_mean': float(fm.mean()) if len(fm) else 0.0,
        'gui_frame_ms_p95': float(np.percentile(fm, 95)) if len(fm) else 0.0,
        'gui_fps': len(fm) / elapsed,
        'displayed_fps': shown / elapsed,
        'render_ms_mean': float(np.mean(render_ms)) if render_ms else 0.0,
        'renderer_fps': 1e3 / float(np.mean(render_ms)) if render_ms else 0.0,
    }


@click.command()
@click.option('--pkl', default=None, metavar='PATH', help='Network pickle (default: the bundled 64 px SG3 net).')
@click.option(
    '--device',
    default='cpu',
    show_default=True,
    type=click.Choice(['auto', 'cpu', 'cuda', 'mps']),
    help='Render device.',
)
@click.option(
    '--seconds', default=20.0, show_default=True, type=click.FloatRange(1), metavar='SEC', help='Measurement time.'
)
@click.option(
    '--warmup',
    'warmup_sec',
    default=3.0,
    show_default=True,
    type=click.FloatRange(0),
    metavar='SEC',
    help='Animated frames before measuring.',
)
@click.option(
    '--fps-limit',
    default=60,
    show_default=True,
    type=click.IntRange(5, 1000),
    metavar='FPS',
    help='GUI frame-rate cap.',
)
@click.option('--in-process', is_flag=True, help='Render in the GUI process (for comparison).')
def main(pkl, device, seconds, warmup_sec, fps_limit, in_process):
    """Measure GUI frame time and displayed-frame rate while rendering."""
    xvfb = _start_xvfb()
    try:
        r = run_bench(pkl, device, seconds, fps_limit, not in_process, warmup_sec)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait()
    mode = 'in-process thread' if in_process else 'separate process'
    click.echo(
        f'renderer: {mode} on {device}; network: {pkl or "bundled default"}; first image after '
        f'{r["first_image_sec"]:.1f} s'
    )
    click.echo(
        f'idle window: GUI process CPU {r["idle_cpu_pct"]:.1f}% of one core over {r["idle_sec"]:.0f} s '
        f'({r["idle_frames_drawn"]} frames drawn; target < 5%)'
    )
    click.echo(
        f'GUI frame time while rendering: mean {r["gui_frame_ms_mean"]:.1f} ms, p95 {r["gui_frame_ms_p95"]:.1f} ms, '
        f'{r["gui_fps"]:.1f} FPS (limit {fps_limit}) over {r["gui_frames"]} frames'
    )
    click.echo(
        f'displayed frames: {r["displayed_fps"]:.2f} /s   renderer own rate: {r["renderer_fps"]:.2f} /s '
        f'(mean render {r["render_ms_mean"]:.0f} ms)'
    )


if __name__ == '__main__':
    main()
