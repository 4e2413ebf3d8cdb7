"""Targets and image distances of the projector (`engine.projector`): target preparation, the built-in loss, and
the VGG16 LPIPS feature file of the reference tools.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# Environment variable naming a local vgg16.pt; otherwise `<cache>/vgg16.pt` is used when present.
VGG16_ENV = 'SG3VIZ_VGG16'

# Targets.


def load_target(image: Any, resolution: int, num_channels: int = 3) -> torch.Tensor:
    """Prepares a target image like the reference projector: centre crop to a square, resize, RGB or grayscale.

    Transparent (RGBA, LA, palette with transparency) images are composited on white. The resize uses PIL's
    Lanczos filter (band-limited, no aliasing when shrinking).

    Args:
        image: A path (str / PathLike), a PIL image, or an [H, W, 3|4] / [H, W] uint8 numpy array.
        resolution: The network's img_resolution (output is resolution x resolution), 1..8192.
        num_channels: The network's img_channels: 3 (RGB) or 1 (grayscale).

    Returns:
        [num_channels, resolution, resolution] uint8 tensor (CPU).

    Raises:
        ValueError: On a file that is not an image, a decompression bomb, an empty image, or bad sizes.
    """
    import PIL.Image

    func = 'load_target()'
    if not isinstance(resolution, int) or not 1 <= resolution <= 8192:
        raise ValueError(f'{func}: resolution must be an integer in [1, 8192], got {resolution!r}')
    if num_channels not in (1, 3):
        raise ValueError(f'{func}: num_channels must be 1 or 3, got {num_channels!r}')
    if isinstance(image, PIL.Image.Image):
        img = image
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(
                f'{func}: an array target must be uint8 [H, W] or [H, W, C], got {image.dtype} {image.shape}'
            )
        img = PIL.Image.fromarray(image)
    else:
        path = pathlib.Path(image)
        try:
            with PIL.Image.open(path) as f:
                f.seek(0)  # the first frame of an animated image
                img = f.copy()
        except FileNotFoundError as e:
            raise ValueError(f'{func}: target image {str(path)!r} does not exist') from e
        except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning) as e:
            raise ValueError(f'{func}: {str(path)!r} is too large to decode safely ({e})') from e
        except (PIL.UnidentifiedImageError, OSError) as e:
            raise ValueError(f'{func}: {str(path)!r} is not an image PIL can read (PNG, JPEG, WebP, ...): {e}') from e
    if img.width < 1 or img.height < 1:
        raise ValueError(f'{func}: the target image is empty ({img.width}x{img.height})')
    img = _composite_on_white(img)

    # Centre crop to a square, then resize.
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    img = img.resize((resolution, resolution), PIL.Image.Resampling.LANCZOS)
    arr = np.asarray(img.convert('L' if num_channels == 1 else 'RGB'), dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def _composite_on_white(img):
    """RGB(A)/L(A)/P image -> RGB or L without alpha, transparent pixels composited on white."""
    import PIL.Image

    if img.mode == 'P':
        img = img.convert('RGBA' if 'transparency' in img.info else 'RGB')
    if img.mode in ('RGBA', 'LA', 'PA') or (img.mode == 'RGB' and 'transparency' in img.info):
        rgba = img.convert('RGBA')
        white = PIL.Image.new('RGBA', rgba.size, (255, 255, 255, 255))
        return PIL.Image.alpha_composite(white, rgba).convert('RGB')
    if img.mode not in ('RGB', 'L'):
        return img.convert('RGB')
    return img


# ----------------------------------------------------------------------------
# Losses.


def _to_256(img_0_255: torch.Tensor) -> torch.Tensor:
    """Area-downsamples [N, C, H, W] to at most 256 px (the VGG16 feature file is applied at 256 px)."""
    if img_0_255.shape[2] > 256:
        img_0_255 = F.interpolate(img_0_255, size=(256, 256), mode='area')
    return img_0_255


def vgg16_distance(vgg16: Callable, synth: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
    """Perceptual distance: squared L2 between LPIPS feature vectors of the VGG16 feature file.

    Args:
        vgg16: The loaded feature network (`load_vgg16()`), called as `f(img, resize_images=False,
            return_lpips=True)` on [N, 3, <=256, <=256] float32 images in [0, 255].
        synth: Generator output [1, C, H, W] in [-1, 1] (C = 1 is repeated to RGB).
        target_features: `vgg16_features(vgg16, target)`, [1, F].

    Returns:
        Scalar tensor.
    """
    feats = vgg16_features(vgg16, (synth + 1) * (255 / 2))
    return (target_features - feats).square().sum()


def vgg16_features(vgg16: Callable, img_0_255: torch.Tensor) -> torch.Tensor:
    """LPIPS feature vectors [N, F] of images [N, C, H, W] in [0, 255] (C = 1 or 3), at <= 256 px."""
    img = _to_256(img_0_255.to(torch.float32))
    if img.shape[1] == 1:
        img = img.repeat(1, 3, 1, 1)
    return vgg16(img, resize_images=False, return_lpips=True)


def _gaussian_window(size: int = 7, sigma: float = 1.5, device: Any = 'cpu') -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of [N, C, H, W] images in [0, 1] (Wang et al. 2004, eq. 13; 7x7 Gaussian window, sigma 1.5)."""
    c1, c2 = 0.01**2, 0.03**2
    C = x.shape[1]
    size = min(7, x.shape[2], x.shape[3])
    g = _gaussian_window(size, 1.5, x.device)
    kx = g.view(1, 1, 1, size).repeat(C, 1, 1, 1)
    ky = g.view(1, 1, size, 1).repeat(C, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kx, groups=C), ky, groups=C)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return ssim.mean()


def builtin_distance(synth: torch.Tensor, target: torch.Tensor, ssim_weight: float = 0.5) -> torch.Tensor:
    """Built-in image distance that needs no downloaded weights (lower quality than the VGG16 perceptual loss).

    Mean over scales s = full size, 1/2, 1/4, ... down to 16 px (2x2 average pooling between scales) of
    `MSE_s + ssim_weight * (1 - SSIM_s)`, on images mapped to [0, 1]. The coarse scales pull colours and layout into
    place early; SSIM (Wang et al. 2004) rewards matching local structure and contrast rather than exact values.

    Args:
        synth: Generator output [N, C, H, W] float32 in [-1, 1].
        target: Target [N, C, H, W] float32 in [-1, 1] (same shape).
        ssim_weight: Weight of the structural term, >= 0.

    Returns:
        Scalar tensor >= 0.
    """
    x = (synth + 1) / 2
    y = (target + 1) / 2
    total = torch.zeros([], device=x.device)
    num = 0
    while True:
        total = total + F.mse_loss(x, y)
        if ssim_weight > 0:
            total = total + ssim_weight * (1 - _ssim(x, y))
        num += 1
        if x.shape[2] < 32 or x.shape[3] < 32:
            break
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return total / num


# ----------------------------------------------------------------------------
# The VGG16 feature file.


def default_vgg16_path() -> pathlib.Path | None:
    """A local vgg16.pt: `$SG3VIZ_VGG16` if set, else `<download cache>/vgg16.pt` if present, else None."""
    env = os.environ.get(VGG16_ENV)
    if env:
        return pathlib.Path(env)
    from engine.loading import cache_dir

    p = cache_dir() / 'vgg16.pt'
    return p if p.is_file() else None


def load_vgg16(source: str | os.PathLike, *, trust: bool = False, device: Any = 'cpu') -> Callable:
    """Loads the VGG16 LPIPS feature file of the reference tools (a TorchScript archive).

    A TorchScript archive is code: running it could read or write files. It is therefore run only when `trust` is
    given or its SHA-256 is one of the published feature files' (see `engine.torchscript_guard`), the same rule as
    for the FID/KID detector. URLs are downloaded once into the cache, never implicitly.

    Args:
        source: Path or http(s) URL of vgg16.pt.
        trust: Run the archive even when its hash is unknown.
        device: Device to load it on.

    Returns:
        The module, called as `f(img_0_255, resize_images=False, return_lpips=True)` -> [N, F].

    Raises:
        engine.loading.LoadError: When the file cannot be read, is not a TorchScript archive, or is untrusted.
    """
    from engine.loading import LoadError, resolve_source

    path = resolve_source(source)
    _check_torchscript_allowed(path, trust=trust, what='VGG16 feature file')
    try:
        module = torch.jit.load(str(path), map_location=device)
    except Exception as e:  # torch raises RuntimeError / ValueError / zipfile errors for foreign files
        raise LoadError(f'{path}: not a TorchScript archive ({type(e).__name__}: {e}); give the vgg16.pt file') from e
    return module.eval()


def _check_torchscript_allowed(path: pathlib.Path, *, trust: bool, what: str) -> None:
    """Refuses to run a TorchScript archive that is neither trusted, pinned nor published (`engine.torchscript_guard`)."""
    from engine.torchscript_guard import check_torchscript_allowed

    check_torchscript_allowed(path, trust=trust, what=what)
