"""OpenGL helpers: numpy image -> texture upload and framebuffer read-back (needs a current GL context)."""

from __future__ import annotations

import numpy as np
import OpenGL.GL as gl


def as_rgba_u8(img: np.ndarray) -> np.ndarray:
    """Validates an image and converts it to a C-contiguous uint8 [H, W, 4] array.

    Args:
        img: uint8 [H, W] (grey), [H, W, 1], [H, W, 3] (RGB) or [H, W, 4] (RGBA), values 0..255.

    Returns:
        uint8 [H, W, 4], alpha 255 where the input had none.

    Raises:
        TypeError: ``img`` is not a uint8 numpy array.
        ValueError: ``img`` has an unsupported shape.
    """
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise TypeError(
            f'as_rgba_u8(): img must be a uint8 numpy array, got {type(img).__name__} '
            f'{getattr(img, "dtype", None)}; convert with np.clip(x, 0, 255).astype(np.uint8)'
        )
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(
            f'as_rgba_u8(): img must have shape [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got {list(img.shape)}'
        )
    h, w, c = img.shape
    if c == 1:
        img = np.repeat(img, 3, axis=2)
    if img.shape[2] == 3:
        img = np.concatenate([img, np.full((h, w, 1), 255, np.uint8)], axis=2)
    return np.ascontiguousarray(img)


class Texture:
    """A 2-D RGBA8 GL texture fed from numpy images; re-uploads in place when the size is unchanged.

    Args:
        img: optional initial image (see :func:`as_rgba_u8`).
        nearest: magnify with nearest-neighbour sampling (shows individual pixels of small layers).
        mipmap: minify with trilinear mipmapping (a downscaled image averages texels instead of skipping them,
            so it does not alias); the mipmaps are rebuilt on every upload.
    """

    def __init__(self, img: np.ndarray | None = None, *, nearest: bool = True, mipmap: bool = True) -> None:
        self.gl_id = int(gl.glGenTextures(1))
        self.width = 0
        self.height = 0
        self.nearest = nearest
        self.mipmap = mipmap
        if img is not None:
            self.update(img)

    def update(self, img: np.ndarray) -> None:
        """Uploads ``img`` (uint8 [H, W(, C)]) to the texture."""
        rgba = as_rgba_u8(img)
        h, w = rgba.shape[:2]
        prev = gl.glGetIntegerv(gl.GL_TEXTURE_BINDING_2D)
        gl.glBindTexture(gl.GL_TEXTURE_2D, self.gl_id)
        gl.glPixelStorei(gl.GL_UNPACK_ALIGNMENT, 1)
        gl.glPixelStorei(gl.GL_UNPACK_ROW_LENGTH, 0)
        if (w, h) != (self.width, self.height):
            mag = gl.GL_NEAREST if self.nearest else gl.GL_LINEAR
            minify = gl.GL_LINEAR_MIPMAP_LINEAR if self.mipmap else gl.GL_LINEAR
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, minify)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, mag)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_WRAP_S, gl.GL_CLAMP_TO_EDGE)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_WRAP_T, gl.GL_CLAMP_TO_EDGE)
            gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGBA8, w, h, 0, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE, rgba)
            self.width, self.height = w, h
        else:
            gl.glTexSubImage2D(gl.GL_TEXTURE_2D, 0, 0, 0, w, h, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE, rgba)
        if self.mipmap:
            gl.glGenerateMipmap(gl.GL_TEXTURE_2D)
        gl.glBindTexture(gl.GL_TEXTURE_2D, prev)

    def delete(self) -> None:
        """Frees the GL texture (safe to call twice)."""
        if self.gl_id:
            gl.glDeleteTextures([self.gl_id])
            self.gl_id = 0


def read_pixels(width: int, height: int) -> np.ndarray:
    """Reads the current read framebuffer (the back buffer before swapping) into a top-down image.

    Args:
        width, height: framebuffer size in pixels.

    Returns:
        uint8 [height, width, 3], row 0 at the top of the window.
    """
    gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
    data = gl.glReadPixels(0, 0, width, height, gl.GL_RGB, gl.GL_UNSIGNED_BYTE)
    if not isinstance(data, np.ndarray | bytes | bytearray):
        data = bytes(data)
    img = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
    return np.ascontiguousarray(img[::-1])


def gl_info() -> dict[str, str]:
    """Vendor / renderer / version strings of the current context."""

    def _s(name: int) -> str:
        v = gl.glGetString(name)
        return v.decode(errors='replace') if isinstance(v, bytes) else str(v)

    return {'vendor': _s(gl.GL_VENDOR), 'renderer': _s(gl.GL_RENDERER), 'version': _s(gl.GL_VERSION)}
