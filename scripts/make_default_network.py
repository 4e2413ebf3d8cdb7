"""Writes the bundled default network `models/default.pkl` (+ `models/default.json` describing it).

A small StyleGAN3-T generator (64 px, channel_base 4096, channel_max 128, 2 mapping layers: about 3.2M parameters,
about 13 MB) with seeded random weights, pickled by our persistence as `{'G_ema': G}` so it loads in safe mode and in
the reference tools. Its running statistics (`w_avg`, every layer's `magnitude_ema`) are set from a few forward passes
so that truncation and the layer gains behave as in a trained network. The training helper may replace the file with
a trained network under the same name.

Example:
    python scripts/make_default_network.py
    python scripts/make_default_network.py --outdir /tmp/models --seed 1
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

G_KWARGS = dict(
    z_dim=512,
    c_dim=0,
    w_dim=512,
    img_resolution=64,
    img_channels=3,
    channel_base=4096,
    channel_max=128,
    magnitude_ema_beta=0.5 ** (32 / (20 * 1e3)),  # stylegan3-t preset with batch 32 (docs/compatibility.md §4)
    mapping_kwargs=dict(num_layers=2),
)


def make_default_network(seed: int = 0, num_samples: int = 256):
    """Builds the default generator with seeded random weights and calibrated running statistics."""
    import torch

    from training.networks_stylegan3 import Generator

    torch.manual_seed(seed)
    G = Generator(**G_KWARGS).eval().requires_grad_(False)
    with torch.no_grad():
        # w_avg: the mean of W over many z (what training tracks with an EMA).
        z = torch.randn([num_samples, G.z_dim])
        G.mapping.w_avg.copy_(G.mapping(z, None).mean(dim=[0, 1]))
        # magnitude_ema: the mean square of each layer's input, measured on a small batch.
        layers = [m for m in G.synthesis.modules() if hasattr(m, 'magnitude_ema_beta')]
        betas = [m.magnitude_ema_beta for m in layers]
        try:
            for m in layers:
                m.magnitude_ema_beta = 0.0  # take the measured value directly
            ws = G.mapping(z[:16], None)
            G.synthesis(ws, update_emas=True)
        finally:
            for m, beta in zip(layers, betas):
                m.magnitude_ema_beta = beta
    return G


def write_default_network(outdir: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """Writes `default.pkl` and `default.json` into `outdir` (atomically) and returns the pickle path."""
    G = make_default_network(seed=seed)
    outdir.mkdir(parents=True, exist_ok=True)
    pkl_path = outdir / 'default.pkl'
    with tempfile.NamedTemporaryFile(dir=outdir, prefix='.default.', suffix='.pkl', delete=False) as f:
        pickle.dump({'G_ema': G}, f)
    os.chmod(f.name, 0o644)  # temporary files are private; the bundled network is not
    os.replace(f.name, pkl_path)
    info = dict(
        description='Bundled default network: StyleGAN3-T generator with seeded random (untrained) weights',
        trained=False,
        cfg='stylegan3-t',
        seed=seed,
        class_name='training.networks_stylegan3.Generator',
        init_kwargs=G_KWARGS,
        num_params=sum(p.numel() for p in G.parameters()),
        num_ws=G.num_ws,
        img_resolution=G.img_resolution,
        z_dim=G.z_dim,
        c_dim=G.c_dim,
        file_bytes=pkl_path.stat().st_size,
        written_by='scripts/make_default_network.py',
    )
    (outdir / 'default.json').write_text(json.dumps(info, indent=2) + '\n', encoding='utf-8')
    return pkl_path


@click.command()
@click.option(
    '--outdir',
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=REPO / 'models',
    show_default=True,
    metavar='DIR',
    help='Folder for default.pkl and default.json.',
)
@click.option(
    '--seed',
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar='INT',
    help='Random seed of the weights.',
)
def main(outdir: pathlib.Path, seed: int) -> None:
    """Write the bundled default network (models/default.pkl + models/default.json)."""
    path = write_default_network(outdir, seed=seed)
    click.echo(f'Wrote {path} ({path.stat().st_size / 1e6:.1f} MB)')


if __name__ == '__main__':
    main()
