#!/usr/bin/env python3
"""Composes the README's "reopen a capture" figure: the window before the drop, the dropped capture PNG (and its
FFT PNG), and the window after the drop, side by side with captions.

Example:
    python docs/captures/figure.py captures/00000-image.png docs/captures/before-drop.png \
        docs/captures/after-drop.png docs/captures/reopen.png
"""

from __future__ import annotations

import pathlib

import click
import numpy as np
import PIL.Image
import PIL.ImageDraw


def _panel(img: PIL.Image.Image, caption: str, height: int) -> PIL.Image.Image:
    """``img`` scaled to ``height`` (nearest for small captures, Lanczos for screenshots) above a caption line."""
    resample = PIL.Image.NEAREST if img.height < height else PIL.Image.LANCZOS
    img = img.convert('RGB').resize((round(img.width * height / img.height), height), resample)
    out = PIL.Image.new('RGB', (img.width, height + 22), 'white')
    out.paste(img, (0, 0))
    PIL.ImageDraw.Draw(out).text((4, height + 5), caption, fill='black')
    return out


@click.command()
@click.argument('capture', type=click.Path(exists=True, dir_okay=False))
@click.argument('before', type=click.Path(exists=True, dir_okay=False))
@click.argument('after', type=click.Path(exists=True, dir_okay=False))
@click.argument('png', type=click.Path(dir_okay=False))
@click.option('--height', type=click.IntRange(min=64, max=2000), default=400, show_default=True)
def main(capture: str, before: str, after: str, png: str, height: int) -> None:
    cap = pathlib.Path(capture)
    panels = [_panel(PIL.Image.open(before), 'window before the drop', height)]
    cap_img = PIL.Image.open(cap)
    fft = cap.with_name(cap.stem + '-fft.png')
    if fft.is_file():
        a = np.asarray(cap_img.convert('RGB').resize((256, 256), PIL.Image.NEAREST))
        b = np.asarray(PIL.Image.open(fft).convert('RGB').resize((256, 256), PIL.Image.NEAREST))
        cap_img = PIL.Image.fromarray(np.concatenate([a, np.full((256, 8, 3), 255, np.uint8), b], axis=1))
    panels.append(_panel(cap_img, f'dropped: {cap.name} (+ its FFT PNG)', height // 2))
    panels.append(_panel(PIL.Image.open(after), 'window after the drop', height))
    gap = 12
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    out = PIL.Image.new('RGB', (width, height + 22), 'white')
    x = 0
    for p in panels:
        out.paste(p, (x, (height + 22 - p.height) // 2))
        x += p.width + gap
    out.save(png)
    click.echo(f'{png} ({out.width}x{out.height})')


if __name__ == '__main__':
    main()
