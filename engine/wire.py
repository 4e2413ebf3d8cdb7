"""The remote-rendering wire format: versioned, length-prefixed messages of plain data, never pickle.

Unpickling bytes from a peer runs code, so requests and results cross the socket as JSON (UTF-8, strict: no NaN or
Infinity tokens) plus raw image bytes. This module owns the framing, the JSON <-> dataclass conversions (checked
field by field against the dataclass annotations of ``engine.protocol``) and the image codecs. It imports only the
standard library, numpy and (for the image codecs, lazily) Pillow: the torch-free client and the server share it.

Frame layout (all integers big-endian)::

    offset  size  field
    0       4     magic b'SG3W'
    4       2     protocol version (PROTOCOL_VERSION)
    6       2     flags (0; reserved)
    8       4     json_len: bytes of the JSON object that follows
    12      4     blob_len: bytes of binary payload after the JSON (encoded images)
    16      ...   JSON object {"type": <str>, ...}, then the blob

The 16-byte header and the ``error`` message ``{"type": "error", "code": <str>, "message": <str>}`` never change
between versions, so a peer speaking another version still reads why it is being turned away; everything else may
change with the version. Messages (client -> server unless marked):

    hello      {version, token, client}                      first message; wrong token -> error 'auth', closed
    welcome    {version, server, allow_trust, root, devices} server -> client, after a good hello
    render     {stamp, request: {RenderRequest fields}}      render this (the newest one wins)
    encoding   {codec, quality}                              how result images are compressed (FrameEncoding)
    separate_process {value}                                 server renders in a separate process or a thread
    list_files {}                                            -> files {root, runs: [[dir, [pkl, ...]], ...]}
    ping       {t}                                           -> pong {t} (round-trip time)
    result     {result: {...}, images: [{field, codec, shape, nbytes}], restarting}  server -> client, images in
               the blob; restarting: the server's render process died and its replacement has not answered yet
    error      {code, message, fatal}                        either way; fatal: the sender closes the connection
    bye        {}                                            either way; the sender closes the connection
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import io
import json
import math
import os
import struct
import types
import typing
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.protocol import RenderRequest, RenderResult

PROTOCOL_VERSION = 1
MAGIC = b'SG3W'
HEADER = struct.Struct('>4sHHII')  # magic, version, flags, json_len, blob_len
DEFAULT_PORT = 7600

CODECS = ('auto', 'png', 'jpeg', 'webp', 'raw')
LOSSLESS_MAX_PX = 256  # 'auto' sends frames up to this size (longer side) as PNG, larger ones as JPEG.
MAX_IMAGE_SIDE_PX = 16384
MAX_STR_LEN = 4096  # Longest string field in a request (paths, URLs, names).
MAX_RESULT_STR_LEN = 1 << 20  # Longest string field in a result (tracebacks).
MAX_SEQ_LEN = 1024  # Longest list field (seeds, layers, refused names).
_MAX_INT = 1 << 63


class WireError(Exception):
    """A message that breaks the protocol.

    Attributes:
        code: short machine-readable reason ('version', 'magic', 'size', 'json', 'field', 'type', 'auth', 'busy',
            'rate', 'timeout', 'path', 'trust', 'image').
        fatal: the connection cannot continue (framing lost, authentication failed, version mismatch).
    """

    def __init__(self, code: str, message: str, *, fatal: bool = False):
        super().__init__(message)
        self.code = code
        self.fatal = fatal


@dataclass(frozen=True)
class Limits:
    """Size limits of what one side accepts from the other.

    Attributes:
        max_json_bytes: largest JSON part of one message.
        max_blob_bytes: largest binary part of one message (0: no binary part allowed).
    """

    max_json_bytes: int
    max_blob_bytes: int


# What the server accepts from a client (requests are small and never carry images) and the client from a server.
CLIENT_TO_SERVER = Limits(max_json_bytes=64 * 1024, max_blob_bytes=0)
SERVER_TO_CLIENT = Limits(max_json_bytes=4 * 1024 * 1024, max_blob_bytes=512 * 1024 * 1024)


@dataclass(frozen=True)
class FrameEncoding:
    """How result images (the frame, the FFT view) are compressed on the wire.

    Attributes:
        codec: 'auto' (PNG up to ``LOSSLESS_MAX_PX`` px, JPEG above), 'png' (lossless), 'jpeg', 'webp' (lossy at
            ``quality``) or 'raw' (uncompressed uint8, the fastest on a fast link).
        quality: 1..100, for JPEG and WebP (and the large frames of 'auto').
    """

    codec: str = 'auto'
    quality: int = 90

    def __post_init__(self):
        if self.codec not in CODECS:
            raise ValueError(f'FrameEncoding(): codec must be one of {CODECS}, got {self.codec!r}')
        if isinstance(self.quality, bool) or not isinstance(self.quality, int) or not 1 <= self.quality <= 100:
            raise ValueError(f'FrameEncoding(): quality must be an integer in 1..100, got {self.quality!r}')

    def codec_for(self, shape: tuple[int, ...]) -> str:
        """The concrete codec for an image of ``shape`` [H, W, 3]."""
        if self.codec != 'auto':
            return self.codec
        return 'png' if max(shape[:2]) <= LOSSLESS_MAX_PX else 'jpeg'


# ----------------------------------------------------------------------------------------------------------------
# Framing.


def encode_message(msg: dict, blob: bytes = b'', *, version: int = PROTOCOL_VERSION) -> bytes:
    """One frame: header, JSON of ``msg`` (which must have a str 'type'), ``blob``.

    Raises:
        ValueError: ``msg`` has no str 'type' or holds values JSON cannot represent (NaN, infinity, objects).
    """
    if not isinstance(msg.get('type'), str):
        raise ValueError(f'encode_message(): msg must have a str "type", got {msg!r:.200}')
    body = json.dumps(msg, allow_nan=False, separators=(',', ':')).encode('utf-8')
    return HEADER.pack(MAGIC, version, 0, len(body), len(blob)) + body + bytes(blob)


def error_message(code: str, message: str, *, fatal: bool = False) -> bytes:
    """An ``error`` frame (its layout is the same in every protocol version)."""
    return encode_message({'type': 'error', 'code': code, 'message': message, 'fatal': fatal})


def _reject_constant(name: str) -> Any:
    raise ValueError(f'{name} is not allowed')


class FrameReader:
    """Incremental frame parser: :meth:`feed` it bytes as they arrive, get complete messages back.

    Args:
        limits: largest JSON and binary parts accepted.

    A frame whose header announces more than the limits is refused as soon as its 16-byte header is in, before any
    of its body is buffered, so a huge length prefix costs nothing.
    """

    def __init__(self, limits: Limits):
        self.limits = limits
        self._buf = bytearray()
        self._head: tuple[int, int, int] | None = None  # (version, json_len, blob_len) of the frame being read.

    @property
    def mid_frame(self) -> bool:
        """True when part of a frame has arrived (a peer that stops here sent a truncated message)."""
        return bool(self._buf) or self._head is not None

    def feed(self, data: bytes) -> list[tuple[int, dict | WireError, bytes]]:
        """Adds ``data``; returns the messages it completed as (version, JSON object, blob).

        A frame whose JSON is invalid, not an object or lacks a str 'type' comes back with a (non-fatal)
        ``WireError('json')`` in place of the object: the frame was consumed and the stream goes on. A message whose
        version differs from ``PROTOCOL_VERSION`` is returned as is (the caller answers with a 'version' error).

        Raises:
            WireError: bad magic or oversized frame (fatal: the stream cannot be resynchronised).
        """
        self._buf += data
        out: list[tuple[int, dict | WireError, bytes]] = []
        while True:
            if self._head is None:
                if len(self._buf) < HEADER.size:
                    return out
                magic, version, _flags, json_len, blob_len = HEADER.unpack_from(self._buf)
                if magic != MAGIC:
                    raise WireError(
                        'magic',
                        f'not an sg3viz remote-rendering stream (got {bytes(magic)!r} instead of {MAGIC!r})',
                        fatal=True,
                    )
                if json_len > self.limits.max_json_bytes or blob_len > self.limits.max_blob_bytes:
                    raise WireError(
                        'size',
                        f'message too large: {json_len} + {blob_len} bytes, the limit is '
                        f'{self.limits.max_json_bytes} + {self.limits.max_blob_bytes}',
                        fatal=True,
                    )
                self._head = (version, json_len, blob_len)
                del self._buf[: HEADER.size]
            version, json_len, blob_len = self._head
            if len(self._buf) < json_len + blob_len:
                return out
            body = bytes(self._buf[:json_len])
            blob = bytes(self._buf[json_len : json_len + blob_len])
            del self._buf[: json_len + blob_len]
            self._head = None
            try:
                obj: dict | WireError = parse_json_object(body)
            except WireError as e:
                obj = e
            out.append((version, obj, blob))


def parse_json_object(body: bytes) -> dict:
    """Strict JSON (UTF-8, no NaN/Infinity) that must be an object with a str 'type'.

    Raises:
        WireError: 'json' (not fatal) when it is not.
    """
    try:
        obj = json.loads(body.decode('utf-8'), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise WireError('json', f'message is not valid JSON: {str(e)[:200]}') from None
    if not isinstance(obj, dict) or not isinstance(obj.get('type'), str):
        raise WireError('json', 'message must be a JSON object with a string "type"')
    return obj


def check_version(version: int, peer: str) -> None:
    """Raises a fatal WireError('version') naming both versions unless ``version == PROTOCOL_VERSION``."""
    if version != PROTOCOL_VERSION:
        raise WireError(
            'version',
            f'protocol version mismatch: the {peer} speaks sg3viz remote protocol v{version}, this side v'
            f'{PROTOCOL_VERSION}; install the same sg3viz version on both machines',
            fatal=True,
        )


# ----------------------------------------------------------------------------------------------------------------
# Typed conversion of JSON values (checked against dataclass annotations).


def _expect(cond: bool, path: str, want: str, value: Any) -> None:
    if not cond:
        raise WireError('field', f'{path} must be {want}, got {_short(value)}')


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + '...'


def _from_json(value: Any, tp: Any, path: str, max_str: int) -> Any:
    """Checks a JSON ``value`` against annotation ``tp`` and converts it (lists -> tuples, dicts -> dataclasses)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _from_json(value, opt, path, max_str)
            except WireError as e:
                errors.append(str(e))
        raise WireError('field', errors[0] if len(errors) == 1 else f'{path} has the wrong type: {_short(value)}')
    if tp is bool:
        _expect(isinstance(value, bool), path, 'true or false', value)
        return value
    if tp is int:
        _expect(isinstance(value, int) and not isinstance(value, bool), path, 'an integer', value)
        _expect(-_MAX_INT <= value < _MAX_INT, path, 'a 64-bit integer', value)
        return value
    if tp is float:
        _expect(isinstance(value, int | float) and not isinstance(value, bool), path, 'a number', value)
        value = float(value)
        _expect(math.isfinite(value), path, 'a finite number', value)
        return value
    if tp is str:
        _expect(isinstance(value, str), path, 'a string', value)
        _expect(len(value) <= max_str, path, f'at most {max_str} characters long', f'{len(value)} characters')
        _expect('\x00' not in value, path, 'free of NUL characters', value)
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        _expect(isinstance(value, list), path, 'a list', value)
        _expect(len(value) <= MAX_SEQ_LEN, path, f'at most {MAX_SEQ_LEN} long', f'{len(value)} items')
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(v, args[0], f'{path}[{i}]', max_str) for i, v in enumerate(value))
        _expect(len(value) == len(args), path, f'a list of {len(args)}', value)
        return tuple(_from_json(v, a, f'{path}[{i}]', max_str) for i, (v, a) in enumerate(zip(value, args)))
    if tp is dict or origin is dict:
        _expect(isinstance(value, dict), path, 'an object', value)
        return {str(k): _plain_json(v, f'{path}.{k}', max_str, depth=0) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _dataclass_from_json(tp, value, path, max_str)
    raise AssertionError(f'wire: no JSON conversion for {tp!r} ({path})')


def _plain_json(value: Any, path: str, max_str: int, depth: int) -> Any:
    """Untyped dict values (stats, impl): numbers, strings, booleans, None and lists of them, bounded."""
    _expect(depth < 4, path, 'nested at most 4 deep', '...')
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        _expect(len(value) <= max_str, path, f'at most {max_str} characters long', f'{len(value)} characters')
        return value
    if isinstance(value, list):
        _expect(len(value) <= MAX_SEQ_LEN, path, f'at most {MAX_SEQ_LEN} long', f'{len(value)} items')
        return tuple(_plain_json(v, f'{path}[{i}]', max_str, depth + 1) for i, v in enumerate(value))
    raise WireError('field', f'{path} must be a number, string or list, got {_short(value)}')


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _dataclass_from_json(cls: Any, value: Any, path: str, max_str: int, skip: tuple[str, ...] = ()) -> Any:
    _expect(isinstance(value, dict), path, 'an object', value)
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in skip]
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise WireError('field', f'{path} has unknown field(s) {_short(unknown)}; known: {", ".join(names)}')
    kw = {k: _from_json(v, hints[k], f'{path}.{k}', max_str) for k, v in value.items()}
    try:
        return cls(**kw)
    except (TypeError, ValueError) as e:
        raise WireError('field', f'{path}: {e}') from None


def _to_json(value: Any) -> Any:
    """Plain JSON value of a protocol object (dataclasses -> dicts, tuples -> lists, numpy scalars -> Python)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # Stats of a diverged layer: shown as missing rather than breaking the frame.
    return value


# ----------------------------------------------------------------------------------------------------------------
# Requests.


def request_to_wire(req: RenderRequest) -> dict:
    """The JSON object of a request (every field but ``stamp``, which travels beside it)."""
    d = _to_json(req)
    d.pop('stamp', None)
    return d


def request_from_wire(value: Any) -> RenderRequest:
    """Checks a request's JSON object field by field and builds the RenderRequest (stamp 0).

    Types are checked against ``RenderRequest``'s annotations (strings at most ``MAX_STR_LEN`` long, lists at most
    ``MAX_SEQ_LEN``, integers 64-bit, numbers finite); missing fields take their defaults. The value ranges are
    checked by the caller with the same validation as local requests.

    Raises:
        WireError: 'field' naming the first bad or unknown field.
    """
    return _dataclass_from_json(RenderRequest, value, 'request', MAX_STR_LEN, skip=('stamp',))


# ----------------------------------------------------------------------------------------------------------------
# Results and images.


def encode_image(img: np.ndarray, codec: str, quality: int) -> bytes:
    """uint8 [H, W, 3] -> bytes in ``codec`` ('png', 'jpeg', 'webp' or 'raw').

    Raises:
        ValueError: not a uint8 [H, W, 3] array or unknown codec.
    """
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'encode_image(): img must be uint8 [H, W, 3], got {img.dtype} {list(img.shape)}')
    if codec == 'raw':
        return np.ascontiguousarray(img).tobytes()
    from PIL import Image

    buf = io.BytesIO()
    pil = Image.fromarray(np.ascontiguousarray(img))
    if codec == 'png':
        pil.save(buf, 'PNG', compress_level=1)
    elif codec == 'jpeg':
        pil.save(buf, 'JPEG', quality=int(quality))
    elif codec == 'webp':
        pil.save(buf, 'WEBP', quality=int(quality), method=0)
    else:
        raise ValueError(f'encode_image(): codec must be one of {CODECS[1:]}, got {codec!r}')
    return buf.getvalue()


def decode_image(data: bytes, codec: str, shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`encode_image`; the decoded image must have exactly ``shape`` [H, W, 3].

    The size is checked from the image header before any pixel is decoded (no decompression bombs).

    Raises:
        WireError: 'image' when the bytes do not decode to ``shape``.
    """
    h, w, c = shape
    if not (0 < h <= MAX_IMAGE_SIDE_PX and 0 < w <= MAX_IMAGE_SIDE_PX and c == 3):
        raise WireError('image', f'image shape must be [H, W, 3] with sides 1..{MAX_IMAGE_SIDE_PX}, got {shape}')
    if codec == 'raw':
        if len(data) != h * w * 3:
            raise WireError('image', f'raw image of shape {shape} must have {h * w * 3} bytes, got {len(data)}')
        return np.frombuffer(data, dtype=np.uint8).reshape(h, w, 3).copy()
    from PIL import Image, UnidentifiedImageError

    formats = {'png': 'PNG', 'jpeg': 'JPEG', 'webp': 'WEBP'}
    if codec not in formats:
        raise WireError('image', f'unknown image codec {codec!r}; known: raw, {", ".join(formats)}')
    try:
        with Image.open(io.BytesIO(data), formats=[formats[codec]]) as pil:
            if pil.size != (w, h):
                raise WireError('image', f'image is {pil.size[0]}x{pil.size[1]}, the message said {w}x{h}')
            arr = np.asarray(pil if pil.mode == 'RGB' else pil.convert('RGB'))  # One copy of the pixels.
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise WireError('image', f'{codec} image does not decode: {e}') from None
    return np.ascontiguousarray(arr)


_IMAGE_FIELDS = ('image', 'fft')


def result_to_wire(
    res: RenderResult, stamp: int, encoding: FrameEncoding, *, num_cpus: int | None = None
) -> tuple[dict, bytes]:
    """A ``result`` message (JSON object, blob) for ``res`` answering client stamp ``stamp``; ``num_cpus`` (default:
    this machine's) decides whether tall frames are coded in parallel bands (:func:`band_rows`)."""
    d = {}
    for f in dataclasses.fields(res):
        if f.name not in _IMAGE_FIELDS:
            d[f.name] = _to_json(getattr(res, f.name))
    d['stamp'] = int(stamp)
    images, parts = [], []
    for name in _IMAGE_FIELDS:
        img = getattr(res, name)
        if img is None:
            continue
        codec = encoding.codec_for(img.shape)
        desc: dict[str, Any] = {'field': name, 'codec': codec, 'shape': list(img.shape)}
        rows = band_rows(img.shape[0], num_cpus) if codec != 'raw' else [img.shape[0]]
        if len(rows) == 1:
            data = encode_image(img, codec, encoding.quality)
        else:  # Tall frames: independent bands, encoded (and decoded) in parallel threads.
            starts = np.cumsum([0, *rows[:-1]])
            slices = [img[y : y + r] for y, r in zip(starts, rows)]
            bands = list(_pool().map(functools.partial(encode_image, codec=codec, quality=encoding.quality), slices))
            desc['bands'] = [[r, len(b)] for r, b in zip(rows, bands)]
            data = b''.join(bands)
        desc['nbytes'] = len(data)
        images.append(desc)
        parts.append(data)
    return {'type': 'result', 'result': d, 'images': images}, b''.join(parts)


BAND_MIN_ROWS = 512  # Frames at least this tall are sent as parallel bands (each a whole PNG/JPEG/WebP image).
MAX_BANDS = 16
_POOL: list[concurrent.futures.ThreadPoolExecutor] = []  # One lazily made pool for band coding (no behaviour).


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix='sg3viz-codec'))
    return _POOL[0]


def band_rows(height: int, num_cpus: int | None = None) -> list[int]:
    """Row counts of the bands a frame of ``height`` rows is coded in.

    One band below ``BAND_MIN_ROWS`` rows or with fewer than 4 CPUs (measured on 2 busy cores, parallel bands cost
    more in thread hand-offs than they save); else ``min(4, cpus // 2)`` bands whose heights are multiples of 16
    (JPEG blocks) except the last.
    """
    cpus = num_cpus if num_cpus is not None else (os.cpu_count() or 1)
    n = min(4, cpus // 2) if height >= BAND_MIN_ROWS and cpus >= 4 else 1
    if n == 1:
        return [height]
    step = (height // n + 15) // 16 * 16
    rows = [step] * (n - 1)
    return [*rows, height - sum(rows)]


def result_from_wire(msg: dict, blob: bytes) -> RenderResult:
    """Inverse of :func:`result_to_wire`, checked field by field (a server is a peer too).

    Raises:
        WireError: a bad field, image description or image.
    """
    res = _dataclass_from_json(RenderResult, msg.get('result'), 'result', MAX_RESULT_STR_LEN, skip=_IMAGE_FIELDS)
    images = msg.get('images', [])
    _expect(isinstance(images, list) and len(images) <= len(_IMAGE_FIELDS), 'images', 'a list of <= 2', images)
    arrays, offset = {}, 0
    for i, desc in enumerate(images):
        _expect(isinstance(desc, dict), f'images[{i}]', 'an object', desc)
        name = desc.get('field')
        _expect(name in _IMAGE_FIELDS and name not in arrays, f'images[{i}].field', "'image' or 'fft'", name)
        shape = _from_json(desc.get('shape'), tuple[int, int, int], f'images[{i}].shape', 16)
        nbytes = _from_json(desc.get('nbytes'), int, f'images[{i}].nbytes', 16)
        codec = _from_json(desc.get('codec'), str, f'images[{i}].codec', 16)
        _expect(0 <= nbytes <= len(blob) - offset, f'images[{i}].nbytes', 'within the message', nbytes)
        data = blob[offset : offset + nbytes]
        if 'bands' in desc:
            arrays[name] = _decode_bands(data, codec, shape, desc['bands'], f'images[{i}].bands')
        else:
            arrays[name] = decode_image(data, codec, shape)
        offset += nbytes
    _expect(offset == len(blob), 'images', f'to describe all {len(blob)} blob bytes', offset)
    return dataclasses.replace(res, **arrays)


def _decode_bands(data: bytes, codec: str, shape: tuple[int, int, int], bands: Any, path: str) -> np.ndarray:
    """Decodes a banded image ([[rows, nbytes], ...] top to bottom) in parallel into one uint8 [H, W, 3] array."""
    h, w, _ = shape
    _expect(isinstance(bands, list) and 2 <= len(bands) <= MAX_BANDS, path, f'a list of 2..{MAX_BANDS}', bands)
    spec = [_from_json(b, tuple[int, int], f'{path}[{k}]', 16) for k, b in enumerate(bands)]
    _expect(all(r > 0 and n >= 0 for r, n in spec), path, 'positive row counts and sizes', bands)
    _expect(sum(r for r, _ in spec) == h, path, f'rows adding up to {h}', bands)
    _expect(sum(n for _, n in spec) == len(data), path, f'sizes adding up to {len(data)}', bands)
    out = np.empty((h, w, 3), dtype=np.uint8)
    jobs, y, offset = [], 0, 0
    for rows, nbytes in spec:
        jobs.append((y, rows, data[offset : offset + nbytes]))
        y, offset = y + rows, offset + nbytes

    def decode(job: tuple[int, int, bytes]) -> None:
        y0, rows, part = job
        out[y0 : y0 + rows] = decode_image(part, codec, (rows, w, 3))

    list(_pool().map(decode, jobs))  # Re-raises a band's WireError.
    return out


__all__ = [
    'CLIENT_TO_SERVER',
    'CODECS',
    'DEFAULT_PORT',
    'FrameEncoding',
    'FrameReader',
    'Limits',
    'PROTOCOL_VERSION',
    'SERVER_TO_CLIENT',
    'WireError',
    'check_version',
    'decode_image',
    'encode_image',
    'encode_message',
    'error_message',
    'parse_json_object',
    'request_from_wire',
    'request_to_wire',
    'result_from_wire',
    'result_to_wire',
]
