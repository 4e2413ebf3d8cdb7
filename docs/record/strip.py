#!/usr/bin/env python3
"""Decodes every STEP-th frame of a video into one horizontal strip PNG (the README's recording figure).

Example:
    python docs/record/strip.py captures/00000-record.mp4 docs/record/layer-strip.png --step 5
"""

from __future__ import annotations

import click
import imageio.v2 as imageio
import numpy as np
import PIL.Image


@click.command()
@click.argument('video', type=click.Path(exists=True, dir_okay=False))
@click.argument('png', type=click.Path(dir_okay=False))
@click.option(
    '--step', metavar='FRAMES', type=click.IntRange(min=1), default=5, show_default=True, help='Every n-th frame'
)
@click.option(
    '--max-frames', metavar='N', type=click.IntRange(min=1), default=6, show_default=True, help='At most N frames'
)
def main(video: str, png: str, step: int, max_frames: int) -> None:
    frames = [np.asarray(f) for f in imageio.mimread(video, memtest=False)][::step][:max_frames]
    gap = np.full((frames[0].shape[0], 4, 3), 255, np.uint8)
    strip = np.concatenate([x for f in frames for x in (f, gap)][:-1], axis=1)
    PIL.Image.fromarray(strip).save(png)
    click.echo(f'{len(frames)} frames of {video} -> {png} ({strip.shape[1]}x{strip.shape[0]})')


if __name__ == '__main__':
    main()
