"""A tiny real training run for the checkpoint-scrub tests: StyleGAN3-T at 16 px, two iterations of 4 images, a
snapshot after each (``network-snapshot-000000.004.pkl`` and ``...008.pkl``), plus metric lines written by the real
``metrics.metric_main.report_metric`` (values made up: the tests check how lines map to snapshots, not the metric)."""

from __future__ import annotations

import pathlib

import numpy as np
import PIL.Image

SNAPSHOT_NAMES = ('network-snapshot-000000.004.pkl', 'network-snapshot-000000.008.pkl')


def make_dataset(path: pathlib.Path, res: int = 16, num: int = 8) -> pathlib.Path:
    """``num`` RGB squares on white, ``res`` px."""
    path.mkdir(parents=True, exist_ok=True)
    rnd = np.random.RandomState(0)
    for i in range(num):
        img = np.full([res, res, 3], 255, np.uint8)
        x0, y0 = rnd.randint(0, res // 2, 2)
        img[y0 : y0 + res // 3, x0 : x0 + res // 3] = rnd.randint(0, 255, 3)
        PIL.Image.fromarray(img).save(path / f'img{i:03d}.png')
    return path


def make_tiny_run(root: pathlib.Path, *, metrics: bool = True) -> pathlib.Path:
    """Trains the tiny run under ``root`` (about 10-20 s on a CPU) and returns its run directory."""
    import train
    from training import training_loop

    data = make_dataset(root / 'data')
    c = train.build_training_options(
        cfg='stylegan3-t', data=str(data), gpus=1, batch=4, gamma=1, kimg=0.008, tick=0.004, snap=1, cbase=128,
        cmax=8, workers=0, device_type='cpu', dataset_resolution=16, aug='noaug', glr=0.02,
    )  # fmt: skip
    c['G_kwargs'].update(z_dim=16, w_dim=16)
    c['grid_size'] = [2, 2]
    run_dir = root / 'runs' / '00000-tiny'
    training_loop.launch_training(c, run_dir=run_dir, device='cpu')
    assert sorted(p.name for p in run_dir.glob('network-snapshot-*.pkl')) == list(SNAPSHOT_NAMES)
    if metrics:
        from metrics import metric_main

        for name, value in zip(SNAPSHOT_NAMES, (41.5, 37.25), strict=True):
            result = {'results': {'fid50k_full': value}, 'metric': 'fid50k_full', 'total_time': 1.0,
                      'total_time_str': '1s', 'num_gpus': 1}  # fmt: skip
            metric_main.report_metric(result, run_dir=str(run_dir), snapshot_pkl=str(run_dir / name))
        metric_main.report_metric(
            {'results': {'eqt50k_int': 20.5}, 'metric': 'eqt50k_int', 'total_time': 1.0, 'total_time_str': '1s',
             'num_gpus': 1}, run_dir=str(run_dir), snapshot_pkl=str(run_dir / SNAPSHOT_NAMES[1]),
        )  # fmt: skip
    return run_dir
