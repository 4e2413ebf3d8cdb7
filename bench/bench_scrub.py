#!/usr/bin/env python3
"""Benchmark: checkpoint scrubbing with and without preloading, through the GUI's render path.

For a training run, steps forward through its snapshots the way Next does in the Checkpoints pane: request snapshot
i + 1 and measure the time until its image arrives (``engine.async_renderer.AsyncRenderer``, separate render
process). Two passes in the same run, each with a fresh render process:

- cold: nothing is loaded ahead, so every step loads a pickle and renders;
- preloaded: after each image arrives, the ``'preload_networks'`` job loads the next snapshots (what the pane does
  while it is open) and the next step is requested once that job is done -- the user's dwell time on a snapshot.

Prints the median step time of both (milliseconds) and the ratio cold / preloaded (> 1: scrubbing feels faster by
that factor). Both passes run one after the other in the same process, so the ratio holds on a shared machine even
when the absolute numbers do not.

Example:
    python bench/bench_scrub.py training-runs/00000-stylegan3-t-twemoji-32-gpus1-batch8-gamma0.5 --steps 6
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import time

import click

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TIMEOUT_SEC = 600.0


def _wait_image(r, stamp: int) -> None:
    deadline = time.monotonic() + TIMEOUT_SEC
    while time.monotonic() < deadline:
        res = r.get_result()
        if res is not None and res.stamp >= stamp:
            if res.error:
                raise RuntimeError(res.error)
            return
        time.sleep(0.002)
    raise TimeoutError('no image')


def _wait_job(r, job_id: int) -> None:
    deadline = time.monotonic() + TIMEOUT_SEC
    while time.monotonic() < deadline:
        for u in r.job_updates():
            if u.job_id == job_id and u.is_final:
                if u.state != 'done':
                    raise RuntimeError(f'preload {u.state}: {u.error}')
                return
        time.sleep(0.005)
    raise TimeoutError('preload did not finish')


def scrub_pass(paths: list[str], *, seed: int, device: str, preload: bool) -> list[float]:
    """Step times in ms for paths[1:] (paths[0] is shown first, untimed)."""
    from engine.async_renderer import AsyncRenderer
    from engine.protocol import RenderRequest

    times = []
    with AsyncRenderer(device=device, spare_process=False) as r:
        base = RenderRequest(w0_seeds=((seed, 1.0),), device=device)
        _wait_image(r, r.set_request(base.replace(pkl=paths[0])))
        for i in range(1, len(paths)):
            if preload:
                _wait_job(r, r.start_job('preload_networks', {'sources': paths[i : i + 2]}))
            t0 = time.perf_counter()
            _wait_image(r, r.set_request(base.replace(pkl=paths[i])))
            times.append((time.perf_counter() - t0) * 1e3)
    return times


@click.command()
@click.argument('run_dir', metavar='RUN_DIR')
@click.option('--steps', metavar='N', type=click.IntRange(1, 1000), default=6, show_default=True, help='Next steps')
@click.option('--seed', metavar='SEED', type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option('--device', metavar='NAME', default='cpu', show_default=True, help='auto, cpu, cuda, cuda:N or mps')
def main(run_dir, steps, seed, device):
    """Step time of Next with and without preloading (see the module docstring)."""
    from engine.checkpoints import load_run

    run = load_run(run_dir, with_metrics=False)
    if len(run.snapshots) < 2:
        raise click.ClickException(f'{run_dir}: needs at least 2 network-snapshot-*.pkl files')
    paths = [s.path for s in run.snapshots][: steps + 1]
    cold = scrub_pass(paths, seed=seed, device=device, preload=False)
    warm = scrub_pass(paths, seed=seed, device=device, preload=True)
    c, w = statistics.median(cold), statistics.median(warm)
    print(f'{len(paths) - 1} Next steps over {run_dir} (device {device})')
    print(f'cold:      median {c:8.1f} ms  ({", ".join(f"{t:.0f}" for t in cold)})')
    print(f'preloaded: median {w:8.1f} ms  ({", ".join(f"{t:.0f}" for t in warm)})')
    print(f'ratio cold / preloaded: {c / w:.2f}x')


if __name__ == '__main__':
    main()
