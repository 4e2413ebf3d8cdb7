"""State files: captures that reopen, saved sessions and recorded timelines (no torch, no GUI).

Three JSON documents share one ``format``/``version`` header (the layout is described in docs/state_files.md):

- ``sg3viz-capture``: one capture; ``request`` (``RenderRequest.to_dict()``) re-renders it, ``widgets`` reopens the
  GUI as it was, ``network`` describes the network that rendered it.
- ``sg3viz-session``: a saved session; ``widgets`` and (since this release) ``request``.
- ``sg3viz-timeline``: ``states``, a list of request dicts rendered one per video frame at ``fps``; ``view`` says
  what a frame shows (:data:`TIMELINE_VIEWS`).

A capture PNG carries its document in an ``iTXt`` chunk with the keyword :data:`PNG_STATE_KEY` (PNG 1.2 spec,
section 4.2.3.3), so the picture alone reopens the state; the JSON sidecar next to it holds the same document. A
recorded mp4 carries its timeline as QuickTime metadata under the same key (``engine.mp4_state``).
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Any

import numpy as np

from engine.protocol import RenderRequest

PNG_STATE_KEY = 'sg3viz-state'
CAPTURE_FORMAT = 'sg3viz-capture'
SESSION_FORMAT = 'sg3viz-session'
TIMELINE_FORMAT = 'sg3viz-timeline'
STATE_FORMATS = (CAPTURE_FORMAT, SESSION_FORMAT, TIMELINE_FORMAT)
STATE_VERSION = 1
TIMELINE_VIEWS = ('image', 'fft', 'image+fft')
MAX_STATE_BYTES = 64 << 20  # A timeline of 10k explicit-ws states stays well below this.
MAX_TIMELINE_FRAMES = 1_000_000
MP4_SUFFIXES = ('.mp4', '.mov', '.m4v')  # engine.mp4_state.MP4_SUFFIXES


def _atomic_write_bytes(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json(path: str | os.PathLike, doc: dict) -> pathlib.Path:
    """Writes ``doc`` as indented JSON, atomically (a temporary file renamed over ``path``). Returns the path."""
    p = pathlib.Path(path)
    _atomic_write_bytes(p, (json.dumps(doc, indent=2) + '\n').encode())
    return p


def save_png_with_state(path: str | os.PathLike, img_u8: np.ndarray, doc: dict | None) -> pathlib.Path:
    """Writes ``img_u8`` (uint8 [H, W] or [H, W, 3|4]) as a PNG carrying ``doc`` as compressed JSON in an iTXt chunk
    keyed :data:`PNG_STATE_KEY` (no chunk when ``doc`` is None). Atomic. Returns the path.

    Raises:
        ValueError: ``img_u8`` is not a uint8 image.
    """
    from PIL import Image, PngImagePlugin

    img_u8 = np.asarray(img_u8)
    if img_u8.dtype != np.uint8 or img_u8.ndim not in (2, 3):
        raise ValueError(f'save_png_with_state(): image must be uint8 [H, W(, C)], got {img_u8.dtype} {img_u8.shape}')
    info = PngImagePlugin.PngInfo()
    if doc is not None:
        info.add_itxt(PNG_STATE_KEY, json.dumps(doc, separators=(',', ':')), zip=True)
    import io

    buf = io.BytesIO()
    Image.fromarray(img_u8).save(buf, format='PNG', pnginfo=info)
    p = pathlib.Path(path)
    _atomic_write_bytes(p, buf.getvalue())
    return p


def png_state(path: str | os.PathLike) -> dict | None:
    """The state document a PNG carries (None when it has none or is not a readable PNG)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.format != 'PNG':
                return None
            text = getattr(im, 'text', {}).get(PNG_STATE_KEY)
    except (OSError, ValueError, SyntaxError):
        return None
    if text is None or len(text) > MAX_STATE_BYTES:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) and doc.get('format') in STATE_FORMATS else None


def is_state_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a state document: a .json with an sg3viz format, a PNG with a state chunk, or a recorded
    .mp4/.mov carrying a timeline (``engine.mp4_state``)."""
    p = pathlib.Path(path)
    if not p.is_file():
        return False
    if p.suffix.lower() == '.png':
        return png_state(p) is not None
    if p.suffix.lower() in ('.json', *MP4_SUFFIXES):
        try:
            read_state_doc(p)
        except ValueError:
            return False
        return True
    return False


def read_state_doc(path: str | os.PathLike, formats: tuple[str, ...] = STATE_FORMATS) -> dict:
    """Reads a state document from a .json file, a capture PNG's chunk or a recorded mp4's metadata.

    Args:
        path: the file.
        formats: accepted ``format`` values.

    Returns:
        The document (a dict with ``format`` in ``formats`` and ``version`` <= :data:`STATE_VERSION`).

    Raises:
        ValueError: missing or unreadable file, too large, a PNG or mp4 without a state, a corrupt mp4, not JSON, a
            format outside ``formats`` or a newer version.
    """
    p = pathlib.Path(path)
    if not p.is_file():
        raise ValueError(
            f'{str(p)!r} must be an existing file (a capture .png/.json, a session, a timeline or a recorded .mp4)'
        )
    if p.suffix.lower() in MP4_SUFFIXES:
        from engine.mp4_state import read_mp4_state

        found = read_mp4_state(p)
        if found is None:
            raise ValueError(
                f'{p.name!r} carries no sg3viz state; only videos recorded by the Record pane or written by '
                f"gen_video.py --timeline reopen, or pass the recording's .json sidecar"
            )
        doc = found
    elif p.suffix.lower() == '.png':
        from_png = png_state(p)
        if from_png is None:
            raise ValueError(
                f'{p.name!r} carries no sg3viz state; only PNGs saved by the Capture widget (or gen_images.py '
                f"--session) reopen, or pass the capture's .json sidecar"
            )
        doc = from_png
    else:
        if p.stat().st_size > MAX_STATE_BYTES:
            raise ValueError(f'{str(p)!r} is larger than {MAX_STATE_BYTES >> 20} MiB; not a state file')
        try:
            doc = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f'{str(p)!r} is not a readable JSON state file ({e})') from e
    if not isinstance(doc, dict) or doc.get('format') not in formats:
        got = doc.get('format') if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f'{str(p)!r} must be one of {", ".join(formats)}, got format {got!r}')
    version = doc.get('version', 1)
    if not isinstance(version, int) or version > STATE_VERSION:
        raise ValueError(
            f'{str(p)!r}: version must be <= {STATE_VERSION}, got {version!r}; the file comes from a newer release'
        )
    return doc


def widgets_from_doc(doc: dict, where: str = 'state file') -> dict:
    """The GUI widget state a dropped document restores: a capture's or session's ``widgets``; for a timeline (a
    recording) the ``widgets`` of its first frame, with every animation switched off (state keys ending in ``anim``)
    so the first recorded state stays on screen as a still.

    Raises:
        ValueError: the document holds no widget state (e.g. a hand-written timeline: render it with
            ``gen_video.py --timeline``), or ``widgets`` is not an object.
    """
    widgets = doc.get('widgets')
    if doc.get('format') == TIMELINE_FORMAT and widgets is None:
        kfs = doc.get('keyframes')
        if isinstance(kfs, list) and kfs and isinstance(kfs[0], dict):
            widgets = kfs[0].get('widgets')
        if widgets is None:
            raise ValueError(
                f'{where} is a timeline without GUI state (only recordings of the Record pane store the first '
                f"frame's widgets); render it with gen_video.py --timeline"
            )
    if widgets is None:
        widgets = {}
    if not isinstance(widgets, dict) or not all(isinstance(v, dict) for v in widgets.values()):
        raise ValueError(f'{where}: "widgets" must be an object of {{widget key: state}}, got {type(widgets).__name__}')
    if doc.get('format') == TIMELINE_FORMAT:
        widgets = {k: {s: (False if s.endswith('anim') else v) for s, v in st.items()} for k, st in widgets.items()}
    return widgets


def request_from_doc(doc: dict, where: str = 'state file') -> RenderRequest:
    """The :class:`RenderRequest` a capture or session document re-renders.

    Raises:
        ValueError: the document has no ``request`` (e.g. a session saved by an older release: open it in the
            visualizer, then save it again) or the request is malformed.
    """
    req = doc.get('request')
    if not isinstance(req, dict):
        raise ValueError(
            f'{where} holds no render request; save it again with this release (Capture or Session widget)'
        )
    return request_from_dict(req, where)


def request_from_dict(d: Any, where: str) -> RenderRequest:
    """``RenderRequest.from_dict`` with a clear error for malformed entries."""
    if not isinstance(d, dict):
        raise ValueError(f'{where}: a state must be a JSON object, got {type(d).__name__}')
    try:
        req = RenderRequest.from_dict(d)
    except (TypeError, ValueError) as e:
        raise ValueError(f'{where}: malformed render request ({e})') from e
    return req


def make_timeline(states: list[RenderRequest], *, fps: float, view: str = 'image', network: dict | None = None) -> dict:
    """A timeline document: ``states`` rendered one per frame at ``fps`` frames/s, each frame showing ``view``.

    Raises:
        ValueError: no states, fps not in (0, 1000], or an unknown view.
    """
    _check_timeline_args(len(states), fps, view)
    return {
        'format': TIMELINE_FORMAT,
        'version': STATE_VERSION,
        'fps': float(fps),
        'view': view,
        'network': network,
        'states': [s.to_dict() for s in states],
    }


def _check_timeline_args(n: int, fps: Any, view: Any) -> None:
    if not 1 <= n <= MAX_TIMELINE_FRAMES:
        raise ValueError(f'a timeline needs 1..{MAX_TIMELINE_FRAMES} states, got {n}')
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 1000:
        raise ValueError(f'timeline fps must be a number in (0, 1000], got {fps!r}')
    if view not in TIMELINE_VIEWS:
        raise ValueError(f'timeline view must be one of {TIMELINE_VIEWS}, got {view!r}')


def load_timeline(path: str | os.PathLike) -> tuple[list[RenderRequest], float, str]:
    """Reads a timeline (or a capture/session, which renders as a one-frame timeline).

    Returns:
        (states, fps, view).

    Raises:
        ValueError: see :func:`read_state_doc`; also an empty or malformed ``states`` list, bad fps or view.
    """
    doc = read_state_doc(path)
    name = pathlib.Path(path).name
    if doc['format'] != TIMELINE_FORMAT:
        return [request_from_doc(doc, name)], 30.0, 'image'
    if 'keyframes' in doc:
        kfs = doc['keyframes']
        if not isinstance(kfs, list) or not all(isinstance(k, dict) for k in kfs):
            raise ValueError(f'{name}: "keyframes" must be a list of {{"state": request, "duration": seconds}}')
        fps, view = doc.get('fps', 30.0), doc.get('view', 'image')
        _check_timeline_args(1, fps, view)
        loop = bool(doc.get('loop', False))
        states_kf = [request_from_dict(k.get('state'), f'{name} keyframe {i}') for i, k in enumerate(kfs)]
        durs = [k.get('duration') for k in (kfs if loop else kfs[:-1])]
        return expand_keyframes(states_kf, durs, float(fps), loop), float(fps), view
    states = doc.get('states')
    if not isinstance(states, list):
        raise ValueError(f'{name}: "states" must be a list of render requests')
    fps = doc.get('fps', 30.0)
    view = doc.get('view', 'image')
    _check_timeline_args(len(states), fps, view)
    return [request_from_dict(s, f'{name} state {i}') for i, s in enumerate(states)], float(fps), view


def compose_view(image: np.ndarray, fft: np.ndarray | None, view: str) -> np.ndarray:
    """One frame of ``view``: the image, the FFT view, or both side by side (FFT resized to the image height with
    nearest-neighbour sampling). uint8 [H, W, 3].

    Raises:
        ValueError: an FFT view was asked for but the render had none (the request must set ``fft_show``).
    """
    if view == 'image':
        return image
    if fft is None:
        raise ValueError(f"view {view!r} needs the FFT: the state's request must set fft_show=true")
    if view == 'fft':
        return fft
    h = image.shape[0]
    if fft.shape[0] != h:
        rows = (np.arange(h) * fft.shape[0] // h).clip(0, fft.shape[0] - 1)
        w = max(1, round(fft.shape[1] * h / fft.shape[0]))
        cols = (np.arange(w) * fft.shape[1] // w).clip(0, fft.shape[1] - 1)
        fft = fft[rows][:, cols]
    return np.concatenate([image, fft[..., :3]], axis=1)


def _blend_seeds(a: RenderRequest, b: RenderRequest, t: float) -> tuple[tuple[int, float], ...]:
    """Seed weights of the W lerp ``(1 - t) * w_a + t * w_b``: the renderer's blend ``w_avg + sum_i weight_i *
    (ws_i - w_avg)`` is linear in the weights, so lerping the weights over the union of seeds lerps W exactly."""
    weights: dict[int, float] = {}
    for seeds, f in ((a.w0_seeds, 1.0 - t), (b.w0_seeds, t)):
        for s, w in seeds:
            weights[s] = weights.get(s, 0.0) + f * w
    return tuple((s, w) for s, w in weights.items() if w != 0.0) or a.w0_seeds


def _decompose(m) -> tuple[float, float, float]:
    """(angle radians, tx, ty) of a rotation + translation matrix ``[[c, s, tx], [-s, c, ty], [0, 0, 1]]`` (the
    layout of the visualizer's Equivariance widget); None = identity."""
    if m is None:
        return 0.0, 0.0, 0.0
    return float(np.arctan2(m[0][1], m[0][0])), float(m[0][2]), float(m[1][2])


def interpolate_states(a: RenderRequest, b: RenderRequest, t: float) -> RenderRequest:
    """The state a fraction ``t`` in [0, 1] of the way from keyframe ``a`` to keyframe ``b``.

    Interpolated linearly: W (seed weights, or explicit ``ws`` when both keyframes have one), ``trunc_psi``,
    ``img_scale_db``, the input transform's rotation angle (shortest way round) and translation. Everything else
    (network, layer, channels, cutoff, stylemix, noise, FFT settings) is ``a``'s until ``t`` reaches 1.

    Raises:
        ValueError: ``t`` outside [0, 1].
    """
    if not 0.0 <= t <= 1.0:
        raise ValueError(f'interpolate_states(): t must be in [0, 1], got {t!r}')
    if t == 0.0:
        return a
    if t == 1.0:
        return b
    changes: dict[str, Any] = {
        'trunc_psi': (1 - t) * a.trunc_psi + t * b.trunc_psi,
        'img_scale_db': (1 - t) * a.img_scale_db + t * b.img_scale_db,
    }
    if a.ws is not None and b.ws is not None and np.shape(a.ws) == np.shape(b.ws):
        ws = (1 - t) * np.asarray(a.ws, np.float64) + t * np.asarray(b.ws, np.float64)
        changes['ws'] = tuple(tuple(float(x) for x in row) for row in ws)
    elif a.ws is None and b.ws is None:
        changes['w0_seeds'] = _blend_seeds(a, b, t)
    if a.input_transform is not None or b.input_transform is not None:
        ra, xa, ya = _decompose(a.input_transform)
        rb, xb, yb = _decompose(b.input_transform)
        d = (rb - ra + np.pi) % (2 * np.pi) - np.pi
        r, x, y = ra + t * d, (1 - t) * xa + t * xb, (1 - t) * ya + t * yb
        c, s = float(np.cos(r)), float(np.sin(r))
        changes['input_transform'] = ((c, s, x), (-s, c, y), (0.0, 0.0, 1.0))
    return a.replace(**changes)


def expand_keyframes(
    keyframes: list[RenderRequest], durations: list[float], fps: float, loop: bool = False
) -> list[RenderRequest]:
    """One state per video frame of a keyframe timeline: segment i runs from keyframe i to keyframe i + 1 (with
    ``loop``, the last segment returns to keyframe 0) for ``durations[i]`` seconds at ``fps`` frames/s; frame k of a
    segment of n frames is :func:`interpolate_states` at ``t = k / n``. Without ``loop`` the last keyframe is appended
    as the final frame.

    Raises:
        ValueError: fewer than 2 keyframes, a wrong number of durations (keyframes - 1, or keyframes with loop), a
            duration that is not finite and > 0, or too many frames.
    """
    need = len(keyframes) if loop else len(keyframes) - 1
    if len(keyframes) < 2:
        raise ValueError(f'a keyframe timeline needs at least 2 keyframes, got {len(keyframes)}')
    if len(durations) != need:
        raise ValueError(
            f'{len(keyframes)} keyframes need {need} segment durations (loop={loop}), got {len(durations)}'
        )
    _check_timeline_args(1, fps, 'image')
    out: list[RenderRequest] = []
    for i, dur in enumerate(durations):
        if isinstance(dur, bool) or not isinstance(dur, (int, float)) or not 0 < dur < 1e6:
            raise ValueError(f'segment {i} duration must be seconds > 0, got {dur!r}')
        n = max(1, round(dur * fps))
        if len(out) + n > MAX_TIMELINE_FRAMES:
            raise ValueError(f'the timeline would have more than {MAX_TIMELINE_FRAMES} frames')
        a, b = keyframes[i], keyframes[(i + 1) % len(keyframes)]
        out.extend(interpolate_states(a, b, k / n) for k in range(n))
    if not loop:
        out.append(keyframes[-1])
    return out
