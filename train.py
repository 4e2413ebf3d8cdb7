"""Train a StyleGAN2 / StyleGAN3 network (the reference `train.py` command line, docs/compatibility.md §4).

Examples:

\b
    # StyleGAN3-T on a 64 px dataset, one GPU (or the CPU), ADA on.
    python train.py --outdir=training-runs --cfg=stylegan3-t --data=datasets/twemoji-64.zip --gpus=1 --batch=32 \\
        --gamma=0.5

\b
    # StyleGAN2 with 8 GPUs on one machine (spawned processes) or with torchrun (multi-node capable).
    python train.py --outdir=training-runs --cfg=stylegan2 --data=datasets/ffhq-256.zip --gpus=8 --batch=64 --gamma=1
    torchrun --nproc-per-node 8 train.py --outdir=training-runs --cfg=stylegan2 --data=... --gpus=8 --batch=64 --gamma=1

\b
    # Resume from a snapshot, a URL or a run directory (its newest snapshot); kimg continues.
    python train.py ... --resume=training-runs/00003-stylegan3-t-twemoji-64-gpus1-batch32-gamma0.5
"""

from __future__ import annotations

import json
import logging
import re

import click

from engine.cli_types import FiniteFloatRange

CFGS = ('stylegan2', 'stylegan3-t', 'stylegan3-r')
logger = logging.getLogger('train')


def _parse_metrics(value: str) -> list[str]:
    names = [name for name in (value or '').split(',') if name and name.lower() != 'none']
    if not names:
        return []
    try:
        from metrics import metric_main
    except ImportError as e:
        raise click.BadParameter(f'metrics are not available in this installation ({e}); use --metrics none') from e
    for name in names:
        if not metric_main.is_valid_metric(name):
            valid = ', '.join(metric_main.list_valid_metrics()) if hasattr(metric_main, 'list_valid_metrics') else '?'
            raise click.BadParameter(f'--metrics must be "none" or a comma-separated list of {valid}, got {name!r}')
    return names


def build_training_options(
    *, cfg, data, gpus, batch, gamma, cond=False, mirror=False, aug='ada', augpipe='bgc', p=0.2, target=0.6,
    resume=None, freezed=0, metrics=(), metrics_num=None, kimg=25000, tick=4, snap=50, seed=0, batch_gpu=None,
    workers=3, fp32=False, cbase=32768, cmax=512, glr=None, dlr=0.002, map_depth=None, mbstd_group=4, device_type='cpu',
    dataset_resolution=None,
) -> dict:  # fmt: skip
    """The `training_loop` keyword arguments of a preset (docs/compatibility.md §4), as a JSON-serialisable dict.

    Raises:
        ValueError: on an unknown cfg/aug or inconsistent batch options (message names the option).
    """
    from training.augment import AUGPIPE_SPECS

    batch_gpu = _check_batch_options(cfg, gpus, batch, batch_gpu, mbstd_group, aug, augpipe)
    use_fp16 = device_type == 'cuda' and not fp32
    num_fp16_res = 4 if use_fp16 else 0
    conv_clamp = 256 if use_fp16 else None
    c: dict = dict(
        training_set_kwargs=dict(
            class_name='training.dataset.ImageFolderDataset', path=data, use_labels=bool(cond), max_size=None,
            xflip=bool(mirror), resolution=dataset_resolution, random_seed=seed,
        ),
        data_loader_kwargs=dict(pin_memory=device_type == 'cuda', num_workers=workers),
        G_kwargs=dict(z_dim=512, w_dim=512, mapping_kwargs=dict(), channel_base=cbase, channel_max=cmax,
                      num_fp16_res=num_fp16_res, conv_clamp=conv_clamp),
        D_kwargs=dict(class_name='training.networks_stylegan2.Discriminator', channel_base=cbase, channel_max=cmax,
                      num_fp16_res=num_fp16_res, conv_clamp=conv_clamp, block_kwargs=dict(freeze_layers=freezed),
                      mapping_kwargs=dict(), epilogue_kwargs=dict(mbstd_group_size=mbstd_group)),
        G_opt_kwargs=dict(class_name='torch.optim.Adam', betas=[0, 0.99], eps=1e-8),
        D_opt_kwargs=dict(class_name='torch.optim.Adam', betas=[0, 0.99], eps=1e-8, lr=dlr),
        loss_kwargs=dict(r1_gamma=gamma),
        metrics=list(metrics), random_seed=seed, num_gpus=gpus, batch_size=batch, batch_gpu=batch_gpu,
        ema_kimg=batch * 10 / 32, ema_rampup=0.05, G_reg_interval=4, D_reg_interval=16,
        total_kimg=kimg, kimg_per_tick=tick, image_snapshot_ticks=snap, network_snapshot_ticks=snap,
        augment_kwargs=None, augment_p=0, ada_target=None, ada_kimg=500,
    )  # fmt: skip
    if workers > 0:
        c['data_loader_kwargs']['prefetch_factor'] = 2
    _apply_architecture_preset(c, cfg, batch=batch, glr=glr, map_depth=map_depth)

    # Augmentation.
    if aug != 'noaug':
        c['augment_kwargs'] = dict(AUGPIPE_SPECS[augpipe])
        if aug == 'ada':
            c['ada_target'] = target
        else:
            c['augment_p'] = p

    # Quick metric estimates; the key is written only when set, so training_options.json keeps the reference keys.
    if metrics_num is not None:
        c['metrics_num'] = int(metrics_num)

    # Resume: kimg, G_ema ramp-up and blur fade continue from the snapshot's progress (the loop disables the ramp-ups
    # when the snapshot's kimg is unknown, as for transfer learning).
    if resume is not None:
        c['resume_pkl'] = resume
        c['ada_kimg'] = 100  # React faster at the beginning.
    return c


def _check_batch_options(cfg, gpus, batch, batch_gpu, mbstd_group, aug, augpipe) -> int:
    """Checks the preset, batch and augmentation options; returns batch_gpu (default: batch // gpus).

    Raises:
        ValueError: as :func:`build_training_options`.
    """
    from training.augment import AUGPIPE_SPECS

    if cfg not in CFGS:
        raise ValueError(f'--cfg must be one of {", ".join(CFGS)}, got {cfg!r}')
    if gpus < 1 or batch < 1 or batch % gpus != 0:
        raise ValueError(f'--batch must be a positive multiple of --gpus {gpus}, got {batch}')
    batch_gpu = batch_gpu or batch // gpus
    if batch % (gpus * batch_gpu) != 0:
        raise ValueError(f'--batch must be a multiple of --gpus * --batch-gpu = {gpus} * {batch_gpu}, got {batch}')
    if batch_gpu % min(mbstd_group, batch_gpu) != 0:
        raise ValueError(f'--batch-gpu must be a multiple of the minibatch-std group {mbstd_group}, got {batch_gpu}')
    if aug not in ('noaug', 'ada', 'fixed'):
        raise ValueError(f'--aug must be noaug, ada or fixed, got {aug!r}')
    if augpipe not in AUGPIPE_SPECS:
        raise ValueError(f'--augpipe must be one of {", ".join(AUGPIPE_SPECS)}, got {augpipe!r}')
    return batch_gpu


def _apply_architecture_preset(c: dict, cfg: str, *, batch: int, glr: float | None, map_depth: int | None) -> None:
    """The generator class, mapping depth, learning rate and loss options of ``cfg`` (docs/compatibility.md §4):
    StyleGAN2 (style mixing, path length regularisation) or StyleGAN3-T / -R (magnitude EMA; -R: 1x1 kernels,
    radial filters, doubled channels, blur fade-in)."""
    if cfg == 'stylegan2':
        c['G_kwargs'].update(class_name='training.networks_stylegan2.Generator', fused_modconv_default='inference_only')
        c['G_kwargs']['mapping_kwargs']['num_layers'] = map_depth or 8
        c['loss_kwargs'].update(style_mixing_prob=0.9, pl_weight=2, pl_no_weight_grad=True)
        c['G_opt_kwargs']['lr'] = glr if glr is not None else 0.002
        return
    c['G_kwargs'].update(class_name='training.networks_stylegan3.Generator')
    c['G_kwargs']['magnitude_ema_beta'] = 0.5 ** (batch / (20 * 1e3))
    c['G_kwargs']['mapping_kwargs']['num_layers'] = map_depth or 2
    c['G_opt_kwargs']['lr'] = glr if glr is not None else 0.0025
    if cfg == 'stylegan3-r':
        c['G_kwargs'].update(conv_kernel=1, use_radial_filters=True)
        c['G_kwargs']['channel_base'] *= 2
        c['G_kwargs']['channel_max'] *= 2
        c['loss_kwargs'].update(blur_init_sigma=10, blur_fade_kimg=batch * 200 / 32)


def _check_dataset(data: str, cond: bool, mirror: bool):
    from training.dataset import DatasetError, ImageFolderDataset

    try:
        dataset = ImageFolderDataset(path=data, use_labels=cond, xflip=mirror, max_size=None)
        if len(dataset) == 0:
            raise click.ClickException(f'--data must contain images, got an empty dataset {data!r}')
        if cond and not dataset.has_labels:
            raise click.ClickException('--cond=True requires labels in dataset.json; remake the dataset with labels')
        res = dataset.resolution
    except DatasetError as e:
        raise click.ClickException(f'--data: {e}') from e
    if res < 16 or res & (res - 1) != 0:
        raise click.ClickException(f'--data must hold square power-of-two images of at least 16 px, got {res} px')
    return dataset


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter('%(message)s'))
    for name in ('train', 'training'):
        log = logging.getLogger(name)
        log.addHandler(handler)
        log.setLevel(logging.INFO if verbose else logging.WARNING)


@click.command(help=__doc__)
@click.option('--outdir', help='Where to make the run directory', metavar='DIR', required=True)
@click.option('--cfg', help='Base configuration', type=click.Choice(CFGS), required=True)
@click.option('--data', help='Training data (zip or folder from dataset_tool.py)', metavar='[ZIP|DIR]', required=True)
@click.option('--gpus', help='Number of processes (GPUs; CPU processes with --device cpu)', metavar='INT',
              type=click.IntRange(min=1), default=1, show_default=True)  # fmt: skip
@click.option('--batch', help='Total batch size', metavar='INT', type=click.IntRange(min=1), required=True)
@click.option('--gamma', help='R1 regularisation weight', metavar='FLOAT', type=FiniteFloatRange(min=0), required=True)
@click.option('--cond', help='Train a conditional model (labels from dataset.json)', metavar='BOOL', type=bool,
              default=False, show_default=True)  # fmt: skip
@click.option('--mirror', help='Enable dataset x-flips', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--aug', help='Augmentation mode', type=click.Choice(['noaug', 'ada', 'fixed']), default='ada',
              show_default=True)  # fmt: skip
@click.option('--augpipe', help='Augmentation pipeline preset', metavar='NAME', default='bgc', show_default=True)
@click.option('--p', help='Probability for --aug=fixed', metavar='FLOAT', type=FiniteFloatRange(min=0, max=1),
              default=0.2, show_default=True)  # fmt: skip
@click.option('--target', help='Target value for --aug=ada', metavar='FLOAT', type=FiniteFloatRange(min=0, max=1),
              default=0.6, show_default=True)  # fmt: skip
@click.option('--resume', help='Resume from a network pickle, URL or run directory', metavar='[PATH|URL]')
@click.option('--freezed', help='Freeze the first layers of D', metavar='INT', type=click.IntRange(min=0), default=0,
              show_default=True)  # fmt: skip
@click.option('--metrics', help='Quality metrics (comma-separated) or "none"', metavar='[NAME|A,B,C|none]',
              default='none', show_default=True)  # fmt: skip
@click.option('--metrics-num', help='Override the number of samples of each metric, for quick estimates',
              metavar='INT', type=click.IntRange(min=1), default=None, show_default=True)  # fmt: skip
@click.option('--kimg', help='Total training duration', metavar='KIMG', type=FiniteFloatRange(min=0, min_open=True),
              default=25000, show_default=True)  # fmt: skip
@click.option('--tick', help='How often to print progress', metavar='KIMG', type=FiniteFloatRange(min=0, min_open=True),
              default=4, show_default=True)  # fmt: skip
@click.option('--snap', help='How often to save snapshots', metavar='TICKS', type=click.IntRange(min=1), default=50,
              show_default=True)  # fmt: skip
@click.option('--seed', help='Random seed', metavar='INT', type=click.IntRange(min=0), default=0, show_default=True)
@click.option('--batch-gpu', help='Batch per process and accumulation round [default: batch/gpus]', metavar='INT',
              type=click.IntRange(min=1))  # fmt: skip
@click.option('--workers', help='DataLoader worker processes', metavar='INT', type=click.IntRange(min=0), default=3,
              show_default=True)  # fmt: skip
@click.option('--fp32', help='Disable mixed precision (fp16 is used on CUDA only)', metavar='BOOL', type=bool,
              default=False, show_default=True)  # fmt: skip
@click.option('--cbase', help='Capacity multiplier', metavar='INT', type=click.IntRange(min=1), default=32768,
              show_default=True)  # fmt: skip
@click.option('--cmax', help='Max. feature maps', metavar='INT', type=click.IntRange(min=1), default=512,
              show_default=True)  # fmt: skip
@click.option('--glr', help='G learning rate [default: 0.002 for stylegan2, 0.0025 for stylegan3]', metavar='FLOAT',
              type=FiniteFloatRange(min=0))  # fmt: skip
@click.option('--dlr', help='D learning rate', metavar='FLOAT', type=FiniteFloatRange(min=0), default=0.002,
              show_default=True)  # fmt: skip
@click.option('--map-depth', help='Mapping network depth [default: 8 for stylegan2, 2 for stylegan3]', metavar='INT',
              type=click.IntRange(min=1))  # fmt: skip
@click.option('--mbstd-group', help='Minibatch std group size', metavar='INT', type=click.IntRange(min=1), default=4,
              show_default=True)  # fmt: skip
@click.option('--desc', help='String to append to the run directory name', metavar='STR')
@click.option('--dry-run', help='Print the options, write training_options.json and exit', is_flag=True)
@click.option('--device', help='Device: auto, cpu, cuda or mps', metavar='NAME', default='auto', show_default=True)
def main(**kwargs):
    _setup_logging(verbose=True)
    from engine.devices import pick_device
    from engine.safe_pickle import LoadError
    from training import training_loop
    from training.dataset import DatasetError

    o = kwargs
    try:
        device_type = pick_device(o['device']).type
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint='--device') from e
    env = training_loop.torchrun_env()
    gpus = o['gpus']
    if env is not None:
        if gpus not in (1, env[2]):
            raise click.BadParameter(f'must be 1 or the torchrun world size {env[2]}, got {gpus}', param_hint='--gpus')
        gpus = env[2]
    metrics = _parse_metrics(o['metrics'])
    dataset = _check_dataset(o['data'], o['cond'], o['mirror'])

    try:
        c = build_training_options(
            cfg=o['cfg'], data=o['data'], gpus=gpus, batch=o['batch'], gamma=o['gamma'], cond=o['cond'],
            mirror=o['mirror'], aug=o['aug'], augpipe=o['augpipe'], p=o['p'], target=o['target'], resume=o['resume'],
            freezed=o['freezed'], metrics=metrics, metrics_num=o['metrics_num'], kimg=o['kimg'], tick=o['tick'],
            snap=o['snap'], seed=o['seed'],
            batch_gpu=o['batch_gpu'], workers=o['workers'], fp32=o['fp32'], cbase=o['cbase'], cmax=o['cmax'],
            glr=o['glr'], dlr=o['dlr'], map_depth=o['map_depth'], mbstd_group=o['mbstd_group'],
            device_type=device_type, dataset_resolution=dataset.resolution,
        )  # fmt: skip
        if o['resume'] is not None and (env is None or env[0] == 0):
            training_loop.load_resume(o['resume'], dataset.resolution)  # Fail early with a clear message.
    except (ValueError, LoadError) as e:
        raise click.ClickException(str(e)) from e

    dataset_name = re.sub(r'[^A-Za-z0-9_.-]+', '_', dataset.name)
    desc = f'{o["cfg"]}-{dataset_name}-gpus{gpus}-batch{o["batch"]}-gamma{o["gamma"]:g}'
    if o['desc']:
        desc += f'-{o["desc"]}'
    run_dir = training_loop.next_run_dir(o['outdir'], desc)

    if env is None or env[0] == 0:
        logger.info('\nTraining options:\n%s\n', json.dumps(c, indent=2))
        logger.info('Output directory:    %s', run_dir)
        logger.info('Number of processes: %d (%s)', gpus, device_type)
        logger.info('Batch size:          %d images', o['batch'])
        logger.info('Training duration:   %g kimg', o['kimg'])
        logger.info('Dataset path:        %s', o['data'])
        logger.info('Dataset size:        %d images', len(dataset))
        logger.info('Dataset resolution:  %d', dataset.resolution)
        logger.info('Dataset labels:      %s', o['cond'])
        logger.info('Dataset x-flips:     %s\n', o['mirror'])
    if o['dry_run']:
        logger.info('Dry run; exiting.')
    try:
        training_loop.launch_training(c, run_dir=run_dir, device=device_type, dry_run=o['dry_run'])
    except (training_loop.TrainingError, LoadError, DatasetError) as e:
        raise click.ClickException(str(e)) from e


if __name__ == '__main__':
    main()
