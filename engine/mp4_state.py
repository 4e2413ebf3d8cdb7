"""The state document inside a recorded mp4: written as QuickTime metadata by ffmpeg, read by a small bounded box
reader (no torch, no subprocess).

Writing (:func:`embed_state`)
    ffmpeg (the imageio-ffmpeg binary) remuxes the encoded video without re-encoding (``-c copy``) and adds one
    metadata item keyed :data:`MP4_STATE_KEY` from an ``ffmetadata`` file, with ``-movflags use_metadata_tags``: the
    mp4 then holds ``moov/udta/meta`` with an ``mdta`` handler, a ``keys`` box naming the key and an ``ilst`` box
    with its value (Apple, QuickTime File Format Specification, "Metadata": keys atom, item list atom, data atom).
    ``ffprobe``/``exiftool`` list it like any tag. The value is :func:`encode_value`: ``zlib+base64:`` followed by
    the base64 of the zlib-compressed JSON (a tag value must be text; a recording of explicit-W states compresses
    several fold). ``faststart`` puts ``moov`` first, so a reader finds it near the start of the file.

Reading (:func:`read_mp4_state`)
    Our own reader rather than ``ffmpeg -f ffmetadata``: a dropped file is untrusted input, and the reader must
    never hang or allocate what a header claims. It walks box headers only (seeking over ``mdat`` and everything
    else), follows the fixed path ``moov -> udta -> meta -> keys/ilst`` (and ``moov -> meta``, where QuickTime
    puts it), checks every size against its parent and the file, counts boxes (:data:`MAX_BOXES`), reads the value
    only when it is at most :data:`MAX_VALUE_BYTES` and inflates it to at most
    ``engine.states.MAX_STATE_BYTES``. Anything else is a ``ValueError`` naming the problem; a valid video without
    our key gives None. It takes milliseconds on any file size and needs no process.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import pathlib
import struct
import subprocess
import tempfile
import zlib
from typing import BinaryIO

MP4_STATE_KEY = 'sg3viz-state'  # same keyword as the PNG chunk (engine.states.PNG_STATE_KEY)
MP4_SUFFIXES = ('.mp4', '.mov', '.m4v')
VALUE_PREFIX = 'zlib+base64:'
MAX_VALUE_BYTES = 48 << 20  # the encoded tag value; a larger one is not embedded (the JSON sidecar still has it)
MAX_DOC_BYTES = 64 << 20  # inflated JSON (engine.states.MAX_STATE_BYTES)
MAX_BOXES = 10_000  # boxes visited in one container before the file is called corrupt
MAX_KEYS_BYTES = 1 << 20
REMUX_TIMEOUT_SEC = 120.0

# Top-level box types of ISO/IEC 14496-12 and QuickTime files: the first box must be one of them.
_TOP_LEVEL = {b'ftyp', b'moov', b'mdat', b'free', b'skip', b'wide', b'pnot', b'uuid', b'styp', b'sidx', b'moof',
              b'mfra', b'meta', b'pdin', b'junk', b'PICT'}  # fmt: skip


# ----------------------------------------------------------------------------
# Value encoding.


def encode_value(doc: dict) -> str:
    """``zlib+base64:`` + base64(zlib(JSON of ``doc``)), the tag value.

    Raises:
        ValueError: the encoded value is larger than :data:`MAX_VALUE_BYTES`.
    """
    raw = json.dumps(doc, separators=(',', ':')).encode()
    value = VALUE_PREFIX + base64.b64encode(zlib.compress(raw, 9)).decode('ascii')
    if len(value) > MAX_VALUE_BYTES:
        raise ValueError(
            f'the state is {len(value) >> 20} MiB compressed, more than the {MAX_VALUE_BYTES >> 20} MiB an mp4 '
            f'carries; the JSON sidecar holds it'
        )
    return value


def decode_value(value: bytes | str, where: str = 'mp4') -> dict:
    """Inverse of :func:`encode_value`, bounded: at most :data:`MAX_DOC_BYTES` of JSON are inflated.

    Raises:
        ValueError: not our encoding, bad base64, a broken or too large zlib stream, not a JSON object.
    """
    text = value.decode('ascii', 'replace') if isinstance(value, bytes) else value
    if not text.startswith(VALUE_PREFIX):
        raise ValueError(f'{where}: the {MP4_STATE_KEY} tag must start with {VALUE_PREFIX!r}; it was not written by us')
    try:
        packed = base64.b64decode(text[len(VALUE_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f'{where}: the {MP4_STATE_KEY} tag is not valid base64 ({e}); the file is damaged') from e
    d = zlib.decompressobj()
    try:
        raw = d.decompress(packed, MAX_DOC_BYTES)
    except zlib.error as e:
        raise ValueError(f'{where}: the {MP4_STATE_KEY} tag does not inflate ({e}); the file is damaged') from e
    if d.unconsumed_tail:
        raise ValueError(f'{where}: the state inflates to more than {MAX_DOC_BYTES >> 20} MiB; refusing it')
    if not d.eof:
        raise ValueError(f'{where}: the {MP4_STATE_KEY} tag is truncated; the file is damaged')
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f'{where}: the {MP4_STATE_KEY} tag is not JSON ({e})') from e
    if not isinstance(doc, dict):
        raise ValueError(f'{where}: the {MP4_STATE_KEY} tag must hold a JSON object, got {type(doc).__name__}')
    return doc


# ----------------------------------------------------------------------------
# Writing.


def _ffmetadata_escape(text: str) -> str:
    # ffmetadata format (ffmpeg documentation, "Metadata"): '=', ';', '#', '\' and newlines are escaped with '\'.
    for ch in ('\\', '=', ';', '#', '\n'):
        text = text.replace(ch, '\\' + ch)
    return text


def embed_state(src: str | os.PathLike, dst: str | os.PathLike, doc: dict) -> None:
    """Copies the video ``src`` to ``dst`` (no re-encoding) with ``doc`` as the :data:`MP4_STATE_KEY` tag and the
    index moved to the front (faststart). ``dst`` is written in place: give a temporary name and rename it.

    Raises:
        ValueError: ``doc`` too large (:func:`encode_value`) or ffmpeg failed (its message).
    """
    import imageio_ffmpeg

    value = encode_value(doc)
    dst = pathlib.Path(dst)
    fd, meta = tempfile.mkstemp(dir=dst.parent, prefix=f'.{dst.name}.', suffix='.ffmeta.tmp')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(';FFMETADATA1\n' + _ffmetadata_escape(MP4_STATE_KEY) + '=' + _ffmetadata_escape(value) + '\n')
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(), '-nostdin', '-v', 'error', '-y', '-i', os.fspath(src), '-f', 'ffmetadata',
            '-i', meta, '-map', '0', '-map_metadata', '1', '-c', 'copy', '-movflags', '+use_metadata_tags+faststart',
            os.fspath(dst),
        ]  # fmt: skip
        try:
            r = subprocess.run(cmd, capture_output=True, timeout=REMUX_TIMEOUT_SEC)
        except subprocess.TimeoutExpired as e:
            raise ValueError(f'ffmpeg did not finish adding the state within {REMUX_TIMEOUT_SEC:.0f} s') from e
        if r.returncode != 0:
            err = r.stderr.decode(errors='replace').strip()[-500:]
            raise ValueError(f'ffmpeg could not add the state to the mp4 (exit {r.returncode}): {err}')
    finally:
        try:
            os.unlink(meta)
        except OSError:
            pass


# ----------------------------------------------------------------------------
# Reading.


class _Box:
    __slots__ = ('type', 'start', 'end')

    def __init__(self, typ: bytes, start: int, end: int):
        self.type, self.start, self.end = typ, start, end  # payload [start, end)


def _boxes(f: BinaryIO, start: int, end: int, where: str, top: bool = False):
    """Yields the boxes in ``[start, end)`` of ``f`` (ISO/IEC 14496-12 section 4.2: 32-bit size, type, 64-bit size
    when size == 1, size 0 = to the end of the file at top level)."""
    pos, count = start, 0
    while pos + 8 <= end:
        count += 1
        if count > MAX_BOXES:
            raise ValueError(f'{where}: more than {MAX_BOXES} boxes in one container; the file is corrupt')
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f'{where}: truncated box header at byte {pos}')
        size, typ = struct.unpack('>I4s', head)
        header = 8
        if size == 1:
            big = f.read(8)
            if len(big) < 8:
                raise ValueError(f'{where}: truncated box header at byte {pos}')
            (size,) = struct.unpack('>Q', big)
            header = 16
        elif size == 0:
            if not top:
                raise ValueError(f'{where}: box {typ!r} at byte {pos} has size 0 inside a container; corrupt')
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(
                f'{where}: box {typ!r} at byte {pos} claims {size} bytes but its container ends at byte {end}; '
                f'the file is truncated or corrupt'
            )
        yield _Box(typ, pos + header, pos + size)
        pos += size


def _child(f: BinaryIO, box: _Box, typ: bytes, where: str, skip: int = 0) -> _Box | None:
    return next((b for b in _boxes(f, box.start + skip, box.end, where) if b.type == typ), None)


def _read(f: BinaryIO, box: _Box, limit: int, where: str) -> bytes:
    n = box.end - box.start
    if n > limit:
        raise ValueError(f'{where}: box {box.type!r} holds {n} bytes, more than the {limit} bytes allowed; refusing it')
    f.seek(box.start)
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f'{where}: box {box.type!r} is truncated')
    return data


def _meta_value(f: BinaryIO, meta: _Box, where: str) -> bytes | None:
    """The raw value of our key in a ``meta`` box (ISO full box with 4 bytes version/flags, or QuickTime's without)."""
    f.seek(meta.start)
    peek = f.read(8)
    skip = 0 if len(peek) == 8 and peek[4:8] in (b'hdlr', b'keys', b'ilst') else 4
    keys_box = _child(f, meta, b'keys', where, skip)
    ilst = _child(f, meta, b'ilst', where, skip)
    if keys_box is None or ilst is None:
        return None
    keys = _read(f, keys_box, MAX_KEYS_BYTES, where)
    if len(keys) < 8:
        raise ValueError(f'{where}: the metadata keys box is truncated')
    (num,) = struct.unpack('>I', keys[4:8])
    pos, index = 8, None
    for i in range(1, num + 1):
        if pos + 8 > len(keys):
            raise ValueError(f'{where}: the metadata keys box lists {num} keys but holds {i - 1}; corrupt')
        size, _ns = struct.unpack('>I4s', keys[pos : pos + 8])
        if size < 8 or pos + size > len(keys):
            raise ValueError(f'{where}: metadata key {i} has a bad size {size}; corrupt')
        if keys[pos + 8 : pos + size] == MP4_STATE_KEY.encode():
            index = i
            break
        pos += size
    if index is None:
        return None
    item = _child(f, ilst, struct.pack('>I', index), where)
    if item is None:
        raise ValueError(f'{where}: the metadata names {MP4_STATE_KEY} but holds no value for it; corrupt')
    data = _child(f, item, b'data', where)
    if data is None:
        raise ValueError(f'{where}: the {MP4_STATE_KEY} item has no data box; corrupt')
    if data.end - data.start < 8:
        raise ValueError(f'{where}: the {MP4_STATE_KEY} data box is truncated')
    value = _read(f, _Box(b'data', data.start + 8, data.end), MAX_VALUE_BYTES, where)  # after type + locale
    return value


def read_mp4_state(path: str | os.PathLike) -> dict | None:
    """The state document an mp4/mov carries (see the module docstring), or None when it is a valid video without
    one.

    Raises:
        ValueError: not an MP4/QuickTime file, truncated or corrupt boxes, too many boxes, a value over the limits
            or damaged (the message names the problem).
    """
    p = pathlib.Path(path)
    where = p.name
    try:
        size = p.stat().st_size
        with open(p, 'rb') as f:
            first = f.read(8)
            if len(first) < 8 or first[4:8] not in _TOP_LEVEL:
                raise ValueError(f'{where} is not an MP4/QuickTime video (no ISO base media box at its start)')
            moov = next((b for b in _boxes(f, 0, size, where, top=True) if b.type == b'moov'), None)
            if moov is None:
                raise ValueError(f'{where} has no movie box (moov): the recording is truncated or unfinished')
            value = None
            udta = _child(f, moov, b'udta', where)
            meta = _child(f, udta, b'meta', where) if udta is not None else None
            if meta is not None:
                value = _meta_value(f, meta, where)
            if value is None:
                meta = _child(f, moov, b'meta', where)
                value = _meta_value(f, meta, where) if meta is not None else None
    except OSError as e:
        raise ValueError(f'{where}: cannot read the file ({e.strerror or e})') from e
    return None if value is None else decode_value(value, where)
