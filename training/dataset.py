"""Image datasets in the reference `dataset_tool.py` format (zip or folder of PNG/JPG + optional `dataset.json`).

The on-disk format (docs/compatibility.md §8): images `00000/img00000000.png ...`, all the same size, 1 or 3
channels, plus `dataset.json` = `{"labels": [["00000/img00000000.png", 6], ...]}` or `{"labels": null}`.
`ImageFolderDataset` also reads raw folders and zips of PNG/JPG; images with an alpha channel or a palette are
composited onto a white background (see `flatten_image`) so that every item has 1 (greyscale) or 3 (RGB) channels.

This module may import only numpy, torch, PIL, json, zipfile and torch_utils (it is part of `training`).
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile

import numpy as np
import PIL.Image
import torch

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.gif')  # animated GIFs: first frame
DEFAULT_BACKGROUND = (255, 255, 255)


class DatasetError(ValueError):
    """A dataset cannot be read or is inconsistent; the message is meant for the user (one line)."""


# ----------------------------------------------------------------------------
# Pixel helpers shared with dataset_tool.py and avg_spectra.py.


def _background_luma(background: tuple[int, int, int]) -> int:
    # ITU-R BT.601 luma, the same weights PIL uses for RGB -> L.
    r, g, b = background
    return int(round(0.299 * r + 0.587 * g + 0.114 * b))


def _composite(color: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    # Straight (non-premultiplied) alpha: out = a * color + (1 - a) * background.
    a = alpha.astype(np.float32)[..., None] / 255.0 if color.ndim == 3 else alpha.astype(np.float32) / 255.0
    out = color.astype(np.float32) * a + background.astype(np.float32) * (1.0 - a)
    return np.rint(out).clip(0, 255).astype(np.uint8)


# Most pixels an image file may decode to (8192 x 8192). Checked from the header before decoding: a few-KB PNG can
# claim 100000 x 100000 pixels (a decompression bomb) and would otherwise take 30 GB to decode.
MAX_IMAGE_PIXELS = 8192 * 8192


def open_image(f, name: str) -> tuple[PIL.Image.Image, int]:
    """Opens and decodes an image file within `MAX_IMAGE_PIXELS`; animated images give their first frame.

    Args:
        f: Binary file object.
        name: Its name, for messages.

    Returns:
        (decoded image, number of frames in the file: > 1 for animated GIF/WebP/PNG, of which frame 0 is returned).

    Raises:
        ValueError: An image larger than `MAX_IMAGE_PIXELS` (a decompression bomb?) or an unreadable file; the
            message names the file.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error', PIL.Image.DecompressionBombWarning)
            img = PIL.Image.open(f)
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f'image {name!r} is {w}x{h} = {w * h:,} pixels, more than the limit of {MAX_IMAGE_PIXELS:,} '
                    '(8192x8192; a decompression bomb?); shrink it first'
                )
            num_frames = int(getattr(img, 'n_frames', 1) or 1)
            if num_frames > 1:
                img.seek(0)
            img.load()
        return img, num_frames
    except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning) as e:
        raise ValueError(f'image {name!r} is too large to decode safely ({e}); shrink it first') from None
    except (OSError, SyntaxError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f'cannot read image {name!r}: {e}') from e


def flatten_image(img: PIL.Image.Image, background: tuple[int, int, int] = DEFAULT_BACKGROUND) -> np.ndarray:
    """Converts a PIL image to a uint8 array with 1 or 3 channels, compositing any alpha onto `background`.

    Rules: `L` and `1` stay greyscale; `LA` (and `L` with a transparent colour) are composited onto the luma of
    `background` and stay greyscale; `P` (palette) and `RGBA` are composited onto `background` and become RGB;
    16-bit greyscale is scaled to 8 bits; any other mode is converted to RGB.

    Args:
        img: a PIL image of any mode.
        background: (r, g, b) in 0..255 used under transparent pixels (default white).

    Returns:
        np.ndarray uint8, [H, W] for greyscale or [H, W, 3] for colour, range 0..255.
    """
    mode = img.mode
    has_transparency = 'transparency' in img.info
    if mode == 'P':
        img = img.convert('RGBA' if has_transparency else 'RGB')
    elif mode in ('L', '1') and has_transparency:
        img = img.convert('LA')
    elif mode == '1':
        img = img.convert('L')
    elif mode.startswith('I;16'):
        arr16 = np.asarray(img).astype(np.uint16)
        return (arr16 >> 8).astype(np.uint8)
    elif mode in ('PA', 'RGBa', 'La'):
        img = img.convert('RGBA' if mode != 'La' else 'LA')
    elif mode not in ('L', 'LA', 'RGB', 'RGBA'):
        img = img.convert('RGB')

    arr = np.asarray(img)
    if img.mode == 'LA':
        return _composite(arr[..., 0], arr[..., 1], np.array(_background_luma(background), dtype=np.uint8))
    if img.mode == 'RGBA':
        return _composite(arr[..., :3], arr[..., 3], np.asarray(background, dtype=np.uint8))
    return np.array(arr, dtype=np.uint8)


def image_to_chw(arr: np.ndarray) -> np.ndarray:
    """[H, W] or [H, W, C] uint8 -> contiguous [C, H, W] uint8."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


# ----------------------------------------------------------------------------


class Dataset(torch.utils.data.Dataset):
    """Abstract image dataset with optional labels, deterministic subsetting and x-flip doubling.

    Subclasses implement `_load_raw_image(raw_idx) -> uint8 [C, H, W]` and `_load_raw_labels() -> ndarray or
    None`. Items are `(image uint8 [C, H, W], label float32 [label_dim])`; labels are one-hot for integer labels,
    the raw float vectors otherwise, and an empty vector for unlabelled datasets.
    """

    def __init__(
        self,
        name: str,  # Name of the dataset.
        raw_shape: list[int],  # Shape of the raw image data [N, C, H, W].
        max_size: int | None = None,  # Keep at most this many images (deterministic random subset), None = all.
        use_labels: bool = False,  # Return labels (otherwise empty label vectors).
        xflip: bool = False,  # Double the dataset with horizontally flipped copies.
        random_seed: int = 0,  # Seed of the subset chosen by max_size.
    ):
        if max_size is not None and (not isinstance(max_size, int) or max_size < 1):
            raise ValueError(f'Dataset(): max_size must be a positive int or None, got {max_size!r}')
        self._name = name
        self._raw_shape = list(raw_shape)
        self._use_labels = use_labels
        self._raw_labels: np.ndarray | None = None
        self._label_shape: list[int] | None = None

        # Deterministic subset: shuffle the indices with the seed, keep the first max_size, sort them back.
        self._raw_idx = np.arange(self._raw_shape[0], dtype=np.int64)
        if max_size is not None and self._raw_idx.size > max_size:
            np.random.RandomState(random_seed % (1 << 31)).shuffle(self._raw_idx)
            self._raw_idx = np.sort(self._raw_idx[:max_size])

        # x-flip doubling: the second half of the items are the mirrored first half.
        self._xflip = np.zeros(self._raw_idx.size, dtype=np.uint8)
        if xflip:
            self._raw_idx = np.tile(self._raw_idx, 2)
            self._xflip = np.concatenate([self._xflip, np.ones_like(self._xflip)])

    def _get_raw_labels(self) -> np.ndarray:
        if self._raw_labels is None:
            raw = self._load_raw_labels() if self._use_labels else None
            if raw is None:
                raw = np.zeros([self._raw_shape[0], 0], dtype=np.float32)
            assert isinstance(raw, np.ndarray) and raw.shape[0] == self._raw_shape[0]
            assert raw.dtype in (np.float32, np.int64)
            if raw.dtype == np.int64:
                assert raw.ndim == 1 and np.all(raw >= 0)
            self._raw_labels = raw
        return self._raw_labels

    def close(self) -> None:
        """Releases open file handles (optional)."""

    def _load_raw_image(self, raw_idx: int) -> np.ndarray:  # to be overridden by subclass
        raise NotImplementedError

    def _load_raw_labels(self) -> np.ndarray | None:  # to be overridden by subclass
        raise NotImplementedError

    def __getstate__(self):
        return dict(self.__dict__, _raw_labels=None)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __len__(self) -> int:
        return int(self._raw_idx.size)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns (image uint8 [C, H, W] in 0..255, label float32 [label_dim])."""
        image = self._load_raw_image(int(self._raw_idx[idx]))
        assert isinstance(image, np.ndarray) and image.dtype == np.uint8
        assert list(image.shape) == self.image_shape
        if self._xflip[idx]:
            image = image[:, :, ::-1]
        return image.copy(), self.get_label(idx)

    def get_label(self, idx: int) -> np.ndarray:
        """Label of item `idx`: float32 [label_dim] (one-hot for integer labels)."""
        label = self._get_raw_labels()[self._raw_idx[idx]]
        if label.dtype == np.int64:
            onehot = np.zeros(self.label_shape, dtype=np.float32)
            onehot[label] = 1
            label = onehot
        return label.copy()

    def get_details(self, idx: int) -> dict:
        """Raw index, x-flip flag and raw label of item `idx`."""
        return dict(
            raw_idx=int(self._raw_idx[idx]),
            xflip=int(self._xflip[idx]) != 0,
            raw_label=self._get_raw_labels()[self._raw_idx[idx]].copy(),
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def image_shape(self) -> list[int]:
        """[C, H, W]."""
        return list(self._raw_shape[1:])

    @property
    def num_channels(self) -> int:
        return self.image_shape[0]

    @property
    def resolution(self) -> int:
        """Side of the square images in pixels; raises DatasetError for non-square images."""
        if self.image_shape[1] != self.image_shape[2]:
            raise DatasetError(
                f'Dataset.resolution: images must be square, got {self.image_shape[2]}x{self.image_shape[1]} '
                f'in {self.name}; remake the dataset with dataset_tool.py --resolution=WxW'
            )
        return self.image_shape[1]

    @property
    def label_shape(self) -> list[int]:
        if self._label_shape is None:
            raw = self._get_raw_labels()
            if raw.dtype == np.int64:
                self._label_shape = [int(np.max(raw)) + 1]
            else:
                self._label_shape = list(raw.shape[1:])
        return list(self._label_shape)

    @property
    def label_dim(self) -> int:
        assert len(self.label_shape) == 1
        return self.label_shape[0]

    @property
    def has_labels(self) -> bool:
        return any(x != 0 for x in self.label_shape)

    @property
    def has_onehot_labels(self) -> bool:
        return self._get_raw_labels().dtype == np.int64


# ----------------------------------------------------------------------------


MAX_CLASSES = 65536  # class labels (one-hot width) a dataset may use; what a network's c_dim may be


class ImageFolderDataset(Dataset):
    """Dataset read from a zip (stored or deflated) or a folder (recursively) of PNG/JPG/BMP/WEBP images.

    Images with alpha or a palette are composited onto white (`flatten_image`); greyscale stays 1 channel.
    Labels come from `dataset.json` at the root (`{"labels": [[fname, label], ...]}` or `{"labels": null}`).

    Args:
        path: zip file or directory.
        resolution: expected square resolution in pixels, or None to accept the size of the first image.
        max_size: keep a deterministic random subset of at most this many images (seeded by `random_seed`).
        use_labels: return labels from dataset.json (empty vectors when False or when there are none).
        xflip: append a horizontally mirrored copy of every image (doubles len()).
        random_seed: seed of the `max_size` subset.

    Raises:
        DatasetError: missing path, not a zip or directory, no images, unreadable/corrupt image (names the
            file), resolution mismatch, images of different sizes or channel counts (raised when loaded, naming
            the file), labels missing for some file.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        resolution: int | None = None,
        *,
        max_size: int | None = None,
        use_labels: bool = False,
        xflip: bool = False,
        random_seed: int = 0,
    ):
        self._path = os.fspath(path)
        self._zipfile: zipfile.ZipFile | None = None

        if os.path.isdir(self._path):
            self._type = 'dir'
            self._all_fnames = {
                os.path.relpath(os.path.join(root, fname), start=self._path).replace(os.sep, '/')
                for root, _dirs, files in os.walk(self._path)
                for fname in files
            }
        elif os.path.isfile(self._path) and zipfile.is_zipfile(self._path):
            self._type = 'zip'
            self._all_fnames = set(self._get_zipfile().namelist())
        elif os.path.isfile(self._path) and self._path.lower().endswith('.zip'):
            raise DatasetError(
                f'ImageFolderDataset(): {self._path!r} is not a valid zip file (truncated or not a zip?); '
                'recreate it with dataset_tool.py'
            )
        elif os.path.exists(self._path):
            raise DatasetError(f'ImageFolderDataset(): path must be a directory or a .zip file, got {self._path!r}')
        else:
            raise DatasetError(f'ImageFolderDataset(): path does not exist: {self._path!r}')

        self._image_fnames = sorted(f for f in self._all_fnames if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
        if len(self._image_fnames) == 0:
            raise DatasetError(
                f'ImageFolderDataset(): no image files ({", ".join(IMAGE_EXTENSIONS)}) found in {self._path!r}'
            )

        name = os.path.splitext(os.path.basename(self._path.rstrip('/\\')))[0]
        raw_shape = [len(self._image_fnames)] + list(self._load_raw_image(0).shape)
        if resolution is not None and (raw_shape[2] != resolution or raw_shape[3] != resolution):
            raise DatasetError(
                f'ImageFolderDataset(): resolution must match the images, got {resolution} but '
                f'{self._image_fnames[0]} is {raw_shape[3]}x{raw_shape[2]}; '
                'remake the dataset with dataset_tool.py --resolution or pass resolution=None'
            )
        super().__init__(
            name=name, raw_shape=raw_shape, max_size=max_size, use_labels=use_labels, xflip=xflip,
            random_seed=random_seed,
        )  # fmt: skip

    @property
    def path(self) -> str:
        return self._path

    @property
    def image_fnames(self) -> list[str]:
        """All image file names (relative, '/'-separated, sorted), before subsetting."""
        return list(self._image_fnames)

    def _get_zipfile(self) -> zipfile.ZipFile:
        assert self._type == 'zip'
        if self._zipfile is None:
            try:
                self._zipfile = zipfile.ZipFile(self._path)
            except (OSError, zipfile.BadZipFile) as e:
                raise DatasetError(f'ImageFolderDataset(): cannot open zip {self._path!r}: {e}') from e
        return self._zipfile

    def _open_file(self, fname: str):
        if self._type == 'dir':
            return open(os.path.join(self._path, fname), 'rb')
        return self._get_zipfile().open(fname, 'r')

    def close(self) -> None:
        try:
            if self._zipfile is not None:
                self._zipfile.close()
        finally:
            self._zipfile = None

    def __getstate__(self):
        return dict(super().__getstate__(), _zipfile=None)

    def _load_raw_image(self, raw_idx: int) -> np.ndarray:
        fname = self._image_fnames[raw_idx]
        try:
            with self._open_file(fname) as f:
                img, _num_frames = open_image(f, fname)
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise DatasetError(f'ImageFolderDataset(): {e} (in {self._path!r})') from e
        image = image_to_chw(flatten_image(img))  # [C, H, W]
        expected = getattr(self, '_raw_shape', None)
        if expected is not None and list(image.shape) != list(expected[1:]):
            c, h, w = expected[1:]
            raise DatasetError(
                f'ImageFolderDataset(): all images must have the same size and channels; {fname!r} is '
                f'{image.shape[2]}x{image.shape[1]}x{image.shape[0]} but {self._image_fnames[0]!r} is {w}x{h}x{c} '
                f'in {self._path!r}; make the dataset with dataset_tool.py --resolution=WxH'
            )
        return image

    def _load_raw_labels(self) -> np.ndarray | None:
        fname = 'dataset.json'
        if fname not in self._all_fnames:
            return None
        try:
            with self._open_file(fname) as f:
                labels = json.load(f)['labels']
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DatasetError(
                f'ImageFolderDataset(): cannot read labels from dataset.json in {self._path!r}: {e}'
            ) from e
        if labels is None:
            return None
        labels = dict(labels)
        missing = [f for f in self._image_fnames if f not in labels]
        if missing:
            raise DatasetError(
                f'ImageFolderDataset(): dataset.json in {self._path!r} has no label for {len(missing)} image(s), '
                f'e.g. {missing[0]!r}; fix dataset.json or use use_labels=False'
            )
        try:
            arr = np.array([labels[f] for f in self._image_fnames], dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise DatasetError(
                f'ImageFolderDataset(): labels in dataset.json in {self._path!r} must be numbers (class indices or '
                'flat float vectors of one length), got other values; fix dataset.json or train with --cond=False'
            ) from None
        if arr.ndim not in (1, 2):
            raise DatasetError(
                f'ImageFolderDataset(): labels in dataset.json must be ints or flat float vectors, got shape '
                f'{list(arr.shape[1:])} per image in {self._path!r}'
            )
        if arr.ndim == 1:
            bad = ~((arr >= 0) & (arr < MAX_CLASSES) & (arr == np.round(arr)))
            if bad.any():
                i = int(np.argmax(bad))
                raise DatasetError(
                    f'ImageFolderDataset(): class labels in dataset.json must be whole numbers in [0, {MAX_CLASSES}), '
                    f'got {float(arr[i]):g} for {self._image_fnames[i]!r} in {self._path!r}; fix dataset.json'
                )
            return arr.astype(np.int64)
        bad_rows = ~np.isfinite(arr.astype(np.float32)).all(axis=1)
        if bad_rows.any():
            i = int(np.argmax(bad_rows))
            raise DatasetError(
                f'ImageFolderDataset(): label vectors in dataset.json must hold finite float32 numbers, got '
                f'{arr[i].tolist()[:8]} for {self._image_fnames[i]!r} in {self._path!r}; fix dataset.json'
            )
        return arr.astype(np.float32)
