"""Makes a training snapshot the bundled default network (`models/default.pkl` + `models/default.json`).

Keeps only `G_ema` (what the tools render), loaded in safe mode and pickled again by our persistence, so the bundled
file is small, loads in safe mode here and in the reference tools. Written atomically.

Example:
    python scripts/bundle_network.py training-runs/00002-stylegan3-t-twemoji-64-gpus1-batch8-gamma0.5 \
        --kimg 14 --command "python train.py ..." --train-time "2 h 10 min on 2 CPU cores"
"""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import sys
import tempfile

import click

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@click.command()
@click.argument('source', metavar='SNAPSHOT|RUN_DIR')
@click.option(
    '--outdir',
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=REPO / 'models',
    show_default=True,
    metavar='DIR',
    help='Folder for default.pkl and default.json.',
)
@click.option('--kimg', type=float, required=True, metavar='KIMG', help='Training length of the snapshot.')
@click.option('--command', 'train_command', type=str, required=True, metavar='CMD', help='How it was trained.')
@click.option('--train-time', type=str, required=True, metavar='TEXT', help='Wall time and hardware of training.')
@click.option(
    '--dataset',
    type=str,
    default='Twemoji 64x64 (CC-BY 4.0), via dataset_tool.py',
    show_default=True,
    metavar='TEXT',
    help='What it was trained on.',
)
def main(source: str, outdir: pathlib.Path, kimg: float, train_command: str, train_time: str, dataset: str) -> None:
    """Bundle SNAPSHOT (or the newest snapshot of RUN_DIR) as models/default.pkl."""
    from engine.loading import LoadError, load_network_pkl, resolve_source

    try:
        path = resolve_source(source)
        data = load_network_pkl(str(path))  # safe mode: nothing from the file runs
    except LoadError as e:
        raise click.ClickException(str(e)) from e
    G = data['G_ema'].eval().requires_grad_(False)
    outdir.mkdir(parents=True, exist_ok=True)
    pkl_path = outdir / 'default.pkl'
    with tempfile.NamedTemporaryFile(dir=outdir, prefix='.default.', suffix='.pkl', delete=False) as f:
        pickle.dump({'G_ema': G}, f)
    os.chmod(f.name, 0o644)
    os.replace(f.name, pkl_path)
    info = dict(
        description='Bundled default network: StyleGAN3-T trained on Twemoji 64x64 (CC-BY 4.0, see ATTRIBUTION.txt)',
        trained=True,
        cfg='stylegan3-t',
        kimg=kimg,
        dataset=dataset,
        train_command=train_command,
        train_time=train_time,
        source_snapshot=path.name,
        class_name=f'{type(G).__module__}.{type(G).__name__}',
        init_kwargs=G.init_kwargs,
        num_params=sum(p.numel() for p in G.parameters()),
        num_ws=G.num_ws,
        img_resolution=G.img_resolution,
        z_dim=G.z_dim,
        c_dim=G.c_dim,
        file_bytes=pkl_path.stat().st_size,
        written_by='scripts/bundle_network.py',
    )
    (outdir / 'default.json').write_text(json.dumps(info, indent=2, default=str) + '\n', encoding='utf-8')
    click.echo(f'Wrote {pkl_path} ({pkl_path.stat().st_size / 1e6:.1f} MB) from {path}')


if __name__ == '__main__':
    main()
