"""Convert a legacy TensorFlow StyleGAN2 / StyleGAN2-ADA network pickle to the PyTorch reference format.

The TF pickle is read in safe mode (only arrays and the TF Network data; its TensorFlow source is never executed),
rebuilt as our StyleGAN2 networks and written as a `{'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}`
pickle that this project, the StyleGAN2-ADA PyTorch tools and the StyleGAN3 tools load. The file is written to a
temporary name and renamed into place when complete.

Examples:
    python convert_network.py --source stylegan2-ffhq-config-f.pkl --dest stylegan2-ffhq-config-f-pt.pkl
    python convert_network.py --source https://example.org/metfaces-tf.pkl --dest metfaces.pkl --force-fp16
"""

from __future__ import annotations

import os
import pathlib
import pickle
import sys

import click

_REPO = pathlib.Path(__file__).resolve().parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))


def convert_network_pickle(
    *, source: str | os.PathLike, dest: str | os.PathLike, force_fp16: bool = False, overwrite: bool = False
) -> dict:
    """Converts a TF network pickle at `source` and writes the reference-format pickle `dest` atomically.

    Args:
        source: Path, `file://` or `http(s)://` URL of a TF StyleGAN2/ADA pickle.
        dest: Output path (its folder is created).
        force_fp16: Use fp16 in the 4 highest resolutions with conv_clamp 256 (as the PyTorch presets; CUDA only).
        overwrite: Replace an existing `dest`.

    Returns:
        The written dict (G, D, G_ema, augment_pipe=None, training_set_kwargs=None).

    Raises:
        engine.loading.LoadError: Unreadable source, not a TF pickle, or a network that cannot be converted.
        FileExistsError: `dest` exists and `overwrite` is False.
    """
    from engine import legacy_tf
    from engine.atomic_files import atomic_path
    from engine.loading import LoadError, resolve_source

    dest = pathlib.Path(dest)
    if dest.exists() and not overwrite:
        raise FileExistsError(f'{dest} exists; pass --overwrite to replace it, or choose another --dest')
    path = resolve_source(source)
    with open(path, 'rb') as f:
        if not legacy_tf.is_tf_pickle(f):
            raise LoadError(
                f'{path} is not a TensorFlow StyleGAN2 pickle (no dnnlib.tflib.network.Network); PyTorch pickles '
                'need no conversion: pass them to the tools directly'
            )
        try:
            data = legacy_tf.load_tf_network_pkl(f, force_fp16=force_fp16)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
            raise LoadError(f'{path} is a corrupt or truncated pickle ({type(e).__name__}: {e})') from e
    out = {'G': data['G'], 'D': data['D'], 'G_ema': data['G_ema'], 'augment_pipe': None, 'training_set_kwargs': None}
    with atomic_path(dest, suffix='.part', mode=0o644) as tmp, open(tmp, 'wb') as f:
        pickle.dump(out, f)
        f.flush()
        os.fsync(f.fileno())
    return out


@click.command()
@click.option('--source', required=True, metavar='PATH|URL', help='TensorFlow StyleGAN2/ADA network pickle')
@click.option(
    '--dest',
    required=True,
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    metavar='PATH',
    help='Output pickle (PyTorch reference format)',
)
@click.option(
    '--force-fp16',
    is_flag=True,
    default=False,
    show_default=True,
    help='Use fp16 in the 4 highest resolutions with conv_clamp 256 (effective on CUDA)',
)
@click.option('--overwrite', is_flag=True, default=False, show_default=True, help='Replace an existing --dest')
def main(source: str, dest: pathlib.Path, force_fp16: bool, overwrite: bool) -> None:
    """Convert a TensorFlow StyleGAN2(-ADA) pickle to the PyTorch format.

    \b
    Examples:
      python convert_network.py --source stylegan2-ffhq-config-f.pkl --dest ffhq-pt.pkl
      python convert_network.py --source metfaces-tf.pkl --dest metfaces.pkl --force-fp16
    """
    from engine.loading import LoadError

    try:
        data = convert_network_pickle(source=source, dest=dest, force_fp16=force_fp16, overwrite=overwrite)
    except (LoadError, FileExistsError) as e:
        raise click.ClickException(str(e)) from None
    G = data['G_ema']
    click.echo(
        f'Wrote {dest}: StyleGAN2 {G.img_resolution}x{G.img_resolution}, {G.img_channels} channels, '
        f'c_dim={G.c_dim}, num_ws={G.num_ws}; G {"yes" if data["G"] is not None else "no"}, '
        f'D {"yes" if data["D"] is not None else "no"}'
    )


if __name__ == '__main__':
    main()
