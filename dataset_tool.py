"""Make training datasets in the reference StyleGAN2-ADA / StyleGAN3 format (docs/compatibility.md §8).

Output: uncompressed PNGs `00000/img00000000.png, ...` plus `dataset.json` (`{"labels": [[fname, label], ...]}`
or `{"labels": null}`), in a zip stored without compression (dest ending in .zip) or in a folder. All images
have the same square power-of-two size and 1 (greyscale) or 3 (RGB) channels.

Examples:

\b
  python dataset_tool.py --source=../shared/data/twemoji-64 --dest=/tmp/twemoji-64.zip
  python dataset_tool.py --source=../shared/data/fashion-mnist/train-images-idx3-ubyte.gz --dest=/tmp/fmnist.zip
  python dataset_tool.py --source=photos/ --dest=/tmp/photos-256.zip --transform=center-crop --resolution=256x256
  python dataset_tool.py --source=classes/ --dest=/tmp/classes.zip --labels-from-folders --resolution=64x64
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import io
import json
import os
import warnings
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import click
import numpy as np
import PIL.Image
from tqdm import tqdm

from training.dataset import (
    DEFAULT_BACKGROUND,
    IMAGE_EXTENSIONS,
    MAX_CLASSES,
    MAX_IMAGE_PIXELS,
    flatten_image,
    open_image,
)

# ----------------------------------------------------------------------------
# Sources.


@dataclasses.dataclass
class _Item:
    name: str  # File name inside the source (for messages and label lookup).
    load: Callable[[], PIL.Image.Image]  # Opens and decodes the image.
    peek: Callable[[], tuple[tuple[int, int], str]] | None = None  # ((W, H), mode) from the header only.
    label: object = None  # int / list of floats / None.


@dataclasses.dataclass
class _Source:
    items: list[_Item]
    class_names: list[str] | None = None  # With --labels-from-folders.
    fixed_size: tuple[int, int] | None = None  # (W, H) when known without opening files (MNIST, padded).
    warnings: list[str] = dataclasses.field(default_factory=list)


def _is_idx(path: str) -> bool:
    return os.path.basename(path).endswith(('-idx3-ubyte.gz', '-idx3-ubyte'))


def _read_idx(path: str, expected_magic: int) -> np.ndarray:
    # IDX format (LeCun et al., MNIST): big-endian int32 magic (0x0801 labels, 0x0803 images), dims, uint8 data.
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rb') as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f'dataset_tool(): cannot read IDX file {path!r}: {e}') from e
    magic = int.from_bytes(data[0:4], 'big')
    if magic != expected_magic:
        raise ValueError(f'dataset_tool(): {path!r} must be an IDX file with magic {expected_magic}, got {magic}')
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], 'big') for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f'dataset_tool(): {path!r} is truncated: expected {int(np.prod(dims))} values, got {arr.size}')
    return arr.reshape(dims)


def _mnist_image(images: np.ndarray, i: int) -> PIL.Image.Image:
    return PIL.Image.fromarray(images[i], 'L')


def _open_mnist(path: str, max_images: int | None, drop_bad_labels: bool = False) -> _Source:
    images = _read_idx(path, 0x0803)  # [N, 28, 28]
    # MNIST-style images are padded with 2 black pixels per side: 28 -> 32, a power of two (docs/compatibility.md §8).
    images = np.pad(images, [(0, 0), (2, 2), (2, 2)], mode='constant', constant_values=0)
    labels_path = os.path.join(os.path.dirname(path), os.path.basename(path).replace('images-idx3', 'labels-idx1'))
    notes: list[str] = []
    labels = None
    if os.path.isfile(labels_path):
        labels = _read_idx(labels_path, 0x0801)
        if labels.shape[0] != images.shape[0]:
            raise ValueError(
                f'dataset_tool(): {labels_path!r} must have one label per image ({images.shape[0]}), '
                f'got {labels.shape[0]}'
            )
    else:
        if not drop_bad_labels:
            raise ValueError(
                f'dataset_tool(): no labels file {labels_path!r} beside the MNIST images; put it there, or pass '
                '--drop-bad-labels to write "labels": null'
            )
        notes.append(f'no labels file {labels_path!r} beside the images; writing "labels": null (--drop-bad-labels)')
    n = images.shape[0] if max_images is None else min(max_images, images.shape[0])
    items = [
        _Item(
            name=f'{os.path.basename(path)}[{i}]',
            load=functools.partial(_mnist_image, images, i),
            label=None if labels is None else int(labels[i]),
        )
        for i in range(n)
    ]
    return _Source(items=items, fixed_size=(images.shape[2], images.shape[1]), warnings=notes)


def _class_labels(fnames: list[str], source: str) -> tuple[list[int], list[str]]:
    loose = [f for f in fnames if '/' not in f]
    if loose:
        raise ValueError(
            f'dataset_tool(): --labels-from-folders needs every image inside a class sub-folder of {source!r}, '
            f'got {loose[0]!r} at the top level; move it into a folder or drop the flag'
        )
    tops = [f.split('/', 1)[0] for f in fnames]
    class_names = sorted(set(tops))
    index = {name: i for i, name in enumerate(class_names)}
    return [index[t] for t in tops], class_names


def _label_problem(label: object) -> str | None:
    """Why a dataset.json label is unusable, or None: a class index in [0, MAX_CLASSES) or a list of finite numbers."""
    if isinstance(label, bool):
        return f'{label!r} is a boolean'
    if isinstance(label, int):
        return None if 0 <= label < MAX_CLASSES else f'class {label} is outside [0, {MAX_CLASSES})'
    if (
        isinstance(label, list)
        and label
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in label)
    ):
        finite = all(np.isfinite(np.float32(v)) for v in label)
        return None if finite else f'{label[:8]} holds values that are not finite float32 numbers'
    return f'{str(label)[:40]!r} is neither a class index nor a list of numbers'


def _check_labels(fnames: list[str], labels: list[object], drop_bad_labels: bool, source_obj) -> list[object]:
    """Missing or invalid labels are an error naming the image, or (with `drop_bad_labels`) drop all labels."""
    problems = [(f, 'no label' if lab is None else _label_problem(lab)) for f, lab in zip(fnames, labels)]
    problems = [(f, p) for f, p in problems if p is not None]
    lengths = {len(lab) if isinstance(lab, list) else 0 for lab in labels if lab is not None}
    if not problems and len(lengths) > 1:
        problems = [(fnames[0], f'labels mix class indices and vectors of lengths {sorted(lengths)}')]
    if not problems:
        return labels
    f, why = problems[0]
    text = f'dataset.json labels are unusable for {len(problems)} image(s), e.g. {f!r}: {why}'
    if not drop_bad_labels:
        raise ValueError(
            f'dataset_tool(): {text}; fix dataset.json, or pass --drop-bad-labels to write "labels": null instead'
        )
    source_obj.warnings.append(f'{text}; writing "labels": null (--drop-bad-labels)')
    return [None] * len(fnames)


def _open_files(
    source: str, max_images: int | None, labels_from_folders: bool, drop_bad_labels: bool = False
) -> _Source:
    """The images of a folder or zip (an MNIST folder is handed to :func:`_open_mnist`), with their labels from the
    folder names or dataset.json. Raises ValueError naming a bad source, dataset.json or label."""
    all_fnames, opener = _list_files(source)
    fnames = [f for f in all_fnames if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
    if not fnames:
        idx = os.path.join(source, 'train-images-idx3-ubyte.gz')
        if os.path.isdir(source) and os.path.isfile(idx):
            return _open_mnist(idx, max_images, drop_bad_labels)
        raise ValueError(f'dataset_tool(): --source {source!r} contains no images ({", ".join(IMAGE_EXTENSIONS)})')

    source_obj = _Source(items=[])
    labels: list[object] = [None] * len(fnames)
    if labels_from_folders:
        labels, source_obj.class_names = _class_labels(fnames, source)  # type: ignore[assignment]
    elif 'dataset.json' in all_fnames:
        table = _read_label_table(opener, source)
        if table is not None:
            labels = _check_labels(fnames, [table.get(f) for f in fnames], drop_bad_labels, source_obj)

    if max_images is not None:
        fnames, labels = fnames[:max_images], labels[:max_images]
    load, peek = _image_loader(opener, source, source_obj), _image_peeker(opener, source)
    source_obj.items = [
        _Item(name=f, load=functools.partial(load, f), peek=functools.partial(peek, f), label=lab)
        for f, lab in zip(fnames, labels)
    ]
    return source_obj


def _list_files(source: str) -> tuple[list[str], Callable[[str], Any]]:
    """(every file name in a folder (relative, '/'-separated) or zip, sorted; a function opening one for reading)."""
    if os.path.isdir(source):
        all_fnames = sorted(
            os.path.relpath(os.path.join(root, f), source).replace(os.sep, '/')
            for root, _dirs, files in os.walk(source)
            for f in files
        )
        return all_fnames, lambda fname: open(os.path.join(source, fname), 'rb')
    try:
        zf = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as e:
        raise ValueError(
            f'dataset_tool(): --source must be a folder, a .zip or an MNIST idx file, got {source!r}: {e}'
        ) from e
    return sorted(zf.namelist()), lambda fname: zf.open(fname, 'r')


def _read_label_table(opener: Callable[[str], Any], source: str) -> dict | None:
    """dataset.json's ``labels`` as {fname: label} (None when it says null). Raises ValueError when unreadable."""
    try:
        with opener('dataset.json') as f:
            table = json.load(f).get('labels')
    except (OSError, ValueError, AttributeError) as e:
        raise ValueError(f'dataset_tool(): cannot read dataset.json in {source!r}: {e}') from e
    if table is None:
        return None
    try:
        return dict(table)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f'dataset_tool(): dataset.json in {source!r} must hold "labels": [[fname, label], ...] ({e})'
        ) from None


def _image_loader(opener: Callable[[str], Any], source: str, source_obj: _Source) -> Callable[[str], PIL.Image.Image]:
    """A function decoding one image (its first frame; the first animated image adds a warning to ``source_obj``)."""
    animated: list[str] = []

    def load(fname: str) -> PIL.Image.Image:
        try:
            with opener(fname) as f:
                img, num_frames = open_image(f, fname)
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise ValueError(f'dataset_tool(): {e} (in {source!r})') from e
        if num_frames > 1 and fname not in animated:
            animated.append(fname)
            if len(animated) == 1:
                source_obj.warnings.append(
                    f'{fname!r} is animated ({num_frames} frames): using its first frame (and the first frame of '
                    'any other animated image)'
                )
        return img

    return load


def _image_peeker(opener: Callable[[str], Any], source: str) -> Callable[[str], tuple[tuple[int, int], str]]:
    """A function reading one image's (size, mode) without decoding it; refuses images over MAX_IMAGE_PIXELS."""

    def peek(fname: str) -> tuple[tuple[int, int], str]:
        try:
            with warnings.catch_warnings(), opener(fname) as f:
                warnings.simplefilter('error', PIL.Image.DecompressionBombWarning)
                img = PIL.Image.open(f)
                if img.size[0] * img.size[1] > MAX_IMAGE_PIXELS:
                    raise ValueError(
                        f'image {fname!r} is {img.size[0]}x{img.size[1]} pixels, more than the limit of '
                        f'{MAX_IMAGE_PIXELS:,} (8192x8192; a decompression bomb?); shrink it first'
                    )
                return img.size, img.mode
        except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning) as e:
            raise ValueError(
                f'dataset_tool(): image {fname!r} is too large to decode safely ({e}) (in {source!r})'
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f'dataset_tool(): cannot read image {fname!r} in {source!r}: {e}') from e

    return peek


def open_source(
    source: str, max_images: int | None = None, labels_from_folders: bool = False, drop_bad_labels: bool = False
) -> _Source:
    """Lists the images (and labels) of a folder, zip or MNIST idx(.gz) file. Raises ValueError for bad input."""
    if not os.path.exists(source):
        raise ValueError(f'dataset_tool(): --source does not exist: {source!r}')
    if _is_idx(source):
        return _open_mnist(source, max_images, drop_bad_labels)
    return _open_files(source, max_images, labels_from_folders, drop_bad_labels)


# ----------------------------------------------------------------------------
# Transforms.


def _is_pow2(x: int) -> bool:
    return x >= 1 and (x & (x - 1)) == 0


MAX_SIDE = 8192  # largest output side (px); StyleGAN networks go to 1024


def parse_resolution(text: str | None) -> tuple[int, int] | None:
    """'256x256' -> (256, 256); None -> None. Raises ValueError."""
    if text is None:
        return None
    parts = text.lower().split('x')
    try:
        w, h = (int(p) for p in parts)
        if w < 1 or h < 1:
            raise ValueError
    except ValueError:
        raise ValueError(
            f'dataset_tool(): --resolution must be WxH with positive integers such as 64x64, got {text!r}'
        ) from None
    if max(w, h) > MAX_SIDE:
        raise ValueError(
            f'dataset_tool(): --resolution sides must be at most {MAX_SIDE} pixels (limit: {MAX_SIDE}x{MAX_SIDE} is '
            f'{MAX_SIDE * MAX_SIDE * 3 / 2**20:,.0f} MiB per RGB image), got {text!r}'
        )
    return w, h


def parse_color(text: str) -> tuple[int, int, int]:
    """'255,255,255' -> (255, 255, 255). Raises ValueError."""
    try:
        rgb = tuple(int(v) for v in text.split(','))
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise ValueError
    except ValueError:
        raise ValueError(f'dataset_tool(): --background must be R,G,B with values in 0..255, got {text!r}') from None
    return rgb  # type: ignore[return-value]


def _resize(arr: np.ndarray, w: int, h: int) -> np.ndarray:
    if arr.shape[1] == w and arr.shape[0] == h:
        return arr
    img = PIL.Image.fromarray(arr)
    return np.asarray(img.resize((w, h), PIL.Image.Resampling.LANCZOS))


def _center_crop(arr: np.ndarray, w: int, h: int) -> np.ndarray:
    # Largest centred square, then resize to w x h.
    s = min(arr.shape[0], arr.shape[1])
    y0, x0 = (arr.shape[0] - s) // 2, (arr.shape[1] - s) // 2
    return _resize(arr[y0 : y0 + s, x0 : x0 + s], w, h)


def _center_crop_wide(arr: np.ndarray, w: int, h: int) -> np.ndarray:
    # Largest centred crop of aspect w:h, resized to w x h, letterboxed (black) into a w x w square canvas.
    ih, iw = arr.shape[:2]
    if iw * h >= ih * w:  # source wider than the target aspect: crop columns
        cw, ch = int(round(ih * w / h)), ih
    else:  # taller: crop rows
        cw, ch = iw, int(round(iw * h / w))
    y0, x0 = (ih - ch) // 2, (iw - cw) // 2
    img = _resize(arr[y0 : y0 + ch, x0 : x0 + cw], w, h)
    canvas = np.zeros((w, w) + img.shape[2:], dtype=np.uint8)
    top = (w - h) // 2
    canvas[top : top + h] = img
    return canvas


def _output_size(transform: str | None, resolution: tuple[int, int] | None) -> tuple[int, int] | None:
    """Checks --transform/--resolution and returns the square output size, or None when it follows the source."""
    if transform is not None and resolution is None:
        raise ValueError(f'dataset_tool(): --transform={transform} needs --resolution=WxH, e.g. --resolution=256x256')
    if resolution is None:
        return None
    w, h = resolution
    if transform == 'center-crop-wide':
        if not _is_pow2(w) or h > w:
            raise ValueError(
                f'dataset_tool(): --resolution for center-crop-wide must be WxH with W a power of two and H <= W '
                f'(output is WxW with bars), got {w}x{h}; e.g. --resolution=512x384'
            )
        return w, w
    if w != h or not _is_pow2(w):
        raise ValueError(
            f'dataset_tool(): --resolution must be a square power of two for training, got {w}x{h}; '
            f'use e.g. --resolution={_next_pow2(max(w, h))}x{_next_pow2(max(w, h))}'
        )
    return w, h


def _next_pow2(x: int) -> int:
    return 1 << max(0, int(x - 1).bit_length())


def _scan_sizes(src: _Source, progress: bool, same_size: bool) -> tuple[tuple[int, int], bool]:
    """Reads only the image headers: returns the common (W, H) and whether any image is colour.

    Raises ValueError naming two files of different sizes (when `same_size`), or an unreadable file.
    """
    first_size = first_name = None
    any_color = False
    for item in tqdm(src.items, desc='Checking sizes', unit='img', disable=not progress, leave=False):
        assert item.peek is not None
        size, mode = item.peek()
        any_color |= mode not in ('L', 'LA', '1', 'I;16', 'I;16B', 'I;16L', 'La')
        if first_size is None:
            first_size, first_name = size, item.name
        elif same_size and size != first_size:
            raise ValueError(
                f'dataset_tool(): all images must have the same size without --resolution, got {first_name!r} '
                f'{first_size[0]}x{first_size[1]} and {item.name!r} {size[0]}x{size[1]}; '
                f'pass --resolution=WxH (resize) or --transform=center-crop --resolution=WxH'
            )
    assert first_size is not None
    return first_size, any_color


# ----------------------------------------------------------------------------
# Writers.


class _Writer:
    """Writes the dataset to a temporary zip / folder beside `dest`; `commit()` renames it into place, `discard()`
    removes it, so an interrupted or failed conversion never leaves a partial dataset at `dest`."""

    def __init__(self, dest: str):
        self.dest = dest
        self.is_zip = dest.lower().endswith('.zip')
        parent = os.path.dirname(os.path.abspath(dest))
        if os.path.exists(parent) and not os.path.isdir(parent):
            raise ValueError(f'dataset_tool(): --dest {dest!r} cannot be written: {parent!r} is a file')
        if self.is_zip:
            if os.path.isdir(dest):
                raise ValueError(f'dataset_tool(): --dest {dest!r} is an existing folder, not a .zip file')
            os.makedirs(parent, exist_ok=True)
            self.tmp = os.path.join(parent, f'.{os.path.basename(dest)}.{os.getpid()}.partial')
            self.zf = zipfile.ZipFile(self.tmp, 'w', compression=zipfile.ZIP_STORED)
        else:
            if os.path.isdir(dest) and os.listdir(dest):
                raise ValueError(f'dataset_tool(): --dest folder must be empty or new, got non-empty {dest!r}')
            if os.path.exists(dest) and not os.path.isdir(dest):
                raise ValueError(f'dataset_tool(): --dest must be a .zip or a folder, got existing file {dest!r}')
            os.makedirs(parent, exist_ok=True)
            self.tmp = os.path.join(parent, f'.{os.path.basename(os.path.abspath(dest))}.{os.getpid()}.partial')
            os.makedirs(self.tmp, exist_ok=False)

    def write(self, fname: str, data: bytes) -> None:
        if self.is_zip:
            self.zf.writestr(fname, data, compress_type=zipfile.ZIP_STORED)
        else:
            path = os.path.join(self.tmp, fname)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'wb') as f:
                f.write(data)

    def commit(self) -> None:
        if self.is_zip:
            self.zf.close()
            os.replace(self.tmp, self.dest)
        else:
            if os.path.isdir(self.dest):
                os.rmdir(self.dest)  # empty (checked at the start)
            os.replace(self.tmp, self.dest)

    def discard(self) -> None:
        import shutil

        if self.is_zip:
            with contextlib.suppress(Exception):
                self.zf.close()
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(arr).save(buf, format='png', compress_level=0, optimize=False)
    return buf.getvalue()


# ----------------------------------------------------------------------------


def _iter_arrays(src: _Source, out_size, transform, resolution, background, to_rgb) -> Iterator[np.ndarray]:
    for item in src.items:
        arr = flatten_image(item.load(), background)  # [H, W] or [H, W, 3] uint8
        if to_rgb and arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if transform == 'center-crop':
            arr = _center_crop(arr, *resolution)
        elif transform == 'center-crop-wide':
            arr = _center_crop_wide(arr, *resolution)
        elif resolution is not None:
            arr = _resize(arr, *resolution)
        if arr.shape[1] != out_size[0] or arr.shape[0] != out_size[1]:  # cannot happen after the scan
            raise ValueError(
                f'dataset_tool(): {item.name!r} has size {arr.shape[1]}x{arr.shape[0]}, expected {out_size}'
            )
        yield arr


def convert_dataset(
    source: str,
    dest: str,
    *,
    max_images: int | None = None,
    transform: str | None = None,
    resolution: tuple[int, int] | None = None,
    labels_from_folders: bool = False,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
    progress: bool = True,
    drop_bad_labels: bool = False,
) -> dict:
    """Converts `source` into a dataset at `dest` (zip or folder) in the reference format.

    Args:
        source: folder or zip of images (labels from its dataset.json or, with `labels_from_folders`, from the
            top-level sub-folder names), or an MNIST `*-images-idx3-ubyte(.gz)` file (labels from the sibling
            `*-labels-idx1-ubyte(.gz)`, images padded 28 -> 32).
        dest: `*.zip` (stored, no compression) or a new/empty folder.
        max_images: keep the first N images in sorted file-name order (None = all).
        transform: None (resize only when `resolution` is given), 'center-crop' or 'center-crop-wide'.
        resolution: (W, H) output size; must be square power of two except for 'center-crop-wide' (W x W out).
        labels_from_folders: label = index of the sorted sub-folder name; class names go in dataset.json.
        background: (r, g, b) composited under transparent pixels (RGBA, LA, palette images).
        progress: show tqdm progress bars.
        drop_bad_labels: write `"labels": null` (with a warning) when the source's labels are missing or invalid;
            without it that is an error naming the image.

    Returns:
        dict(num_images, resolution (W, H), channels, has_labels, dest, warnings: list[str]).

    Raises:
        ValueError: missing/empty/unreadable source (names the file), mixed sizes without `resolution` (names two
            files), output size not a square power of two (names the fix), non-empty dest folder, an image beyond
            `MAX_IMAGE_PIXELS` (decompression bomb), missing or invalid labels without `drop_bad_labels`. Nothing
            is left at `dest` when the conversion fails.
    """
    out_size = _output_size(transform, resolution)
    src = open_source(
        source, max_images=max_images, labels_from_folders=labels_from_folders, drop_bad_labels=drop_bad_labels
    )
    if not src.items:
        raise ValueError(f'dataset_tool(): --source {source!r} contains no images')

    out_size, any_color = _resolve_output_size(src, out_size, progress)
    labels_out: list | None = [] if all(it.label is not None for it in src.items) else None
    writer = _Writer(dest)
    ok = False
    try:
        arrays = _iter_arrays(src, out_size, transform, resolution, background, to_rgb=any_color)
        channels = _write_images(writer, src, arrays, labels_out, progress)
        meta: dict = {'labels': labels_out}
        if src.class_names is not None:
            meta['class_names'] = src.class_names
        writer.write('dataset.json', json.dumps(meta).encode('utf-8'))
        writer.commit()
        ok = True
    finally:
        if not ok:
            writer.discard()  # nothing partial at dest
    return dict(
        num_images=len(src.items), resolution=tuple(out_size), channels=channels, has_labels=labels_out is not None,
        dest=dest, warnings=list(src.warnings),
    )  # fmt: skip


def _resolve_output_size(
    src: _Source, out_size: tuple[int, int] | None, progress: bool
) -> tuple[tuple[int, int], bool]:
    """(the output size: ``out_size``, or the images' common size when None; whether any image has colour).

    Raises:
        ValueError: without ``out_size``, images of mixed sizes or a size that is not a square power of two.
    """
    if src.fixed_size is not None:  # MNIST: no need to open anything
        scanned, any_color = src.fixed_size, False
    else:
        scanned, any_color = _scan_sizes(src, progress, same_size=out_size is None)
    if out_size is None:
        w, h = scanned
        if w != h or not _is_pow2(w):
            s = _next_pow2(max(w, h))
            raise ValueError(
                f'dataset_tool(): images must be square with a power-of-two side for training, got {w}x{h} '
                f'(e.g. {src.items[0].name!r}); pass --resolution={s}x{s} (resize) or '
                f'--transform=center-crop --resolution={s}x{s}'
            )
        out_size = scanned
    return out_size, any_color


def _write_images(writer: _Writer, src: _Source, arrays: Iterator, labels_out: list | None, progress: bool) -> int:
    """Writes each image as ``<idx // 1000 as 5 digits>/img<idx as 8 digits>.png`` (the reference layout), appending
    ``[fname, label]`` to ``labels_out`` when given. Returns the channel count of the last image (0 for none)."""
    channels = 0
    for idx, (item, arr) in enumerate(
        tqdm(zip(src.items, arrays), total=len(src.items), desc='Writing', unit='img', disable=not progress)
    ):
        idx_str = f'{idx:08d}'
        fname = f'{idx_str[:5]}/img{idx_str}.png'
        writer.write(fname, _png_bytes(arr))
        channels = 1 if arr.ndim == 2 else arr.shape[2]
        if labels_out is not None:
            labels_out.append([fname, item.label])
    return channels


# ----------------------------------------------------------------------------


@click.command(help=__doc__)
@click.option(
    '--source', metavar='PATH', required=True, help='Folder or zip of images, or an MNIST *-images-idx3-ubyte.gz file'
)
@click.option('--dest', metavar='PATH', required=True, help='Output dataset: *.zip (stored) or a new/empty folder')
@click.option(
    '--max-images',
    metavar='INT',
    type=click.IntRange(min=1),
    default=None,
    show_default=True,
    help='Keep only the first N images (sorted file names); default all',
)
@click.option(
    '--transform',
    type=click.Choice(['center-crop', 'center-crop-wide']),
    default=None,
    show_default=True,
    help='Crop before resizing (needs --resolution); default: plain resize',
)
@click.option(
    '--resolution',
    metavar='WxH',
    type=str,
    default=None,
    show_default=True,
    help='Output size in pixels, square power of two such as 64x64 (center-crop-wide: WxH inside a WxW canvas); default: keep the source size',
)
@click.option(
    '--labels-from-folders',
    is_flag=True,
    default=False,
    show_default=True,
    help='Label = index of the sorted top-level sub-folder name (instead of the source dataset.json)',
)
@click.option(
    '--background',
    metavar='R,G,B',
    type=str,
    default='255,255,255',
    show_default=True,
    help='Colour composited under transparent pixels of RGBA / LA / palette images (greyscale uses its luma)',
)
@click.option(
    '--drop-bad-labels',
    is_flag=True,
    default=False,
    show_default=True,
    help='Write "labels": null when the source labels are missing or invalid (default: that is an error)',
)
def main(source, dest, max_images, transform, resolution, labels_from_folders, background, drop_bad_labels):  # noqa: D103
    try:
        summary = convert_dataset(
            source, dest, max_images=max_images, transform=transform, resolution=parse_resolution(resolution),
            labels_from_folders=labels_from_folders, background=parse_color(background),
            drop_bad_labels=drop_bad_labels,
        )  # fmt: skip
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    for w in summary['warnings']:
        click.echo(f'Warning: {w}', err=True)
    w, h = summary['resolution']
    labels = 'with labels' if summary['has_labels'] else 'no labels'
    click.echo(f'Wrote {summary["num_images"]} images of {w}x{h}x{summary["channels"]} ({labels}) to {dest}')


if __name__ == '__main__':
    main()
