"""State files: captures that reopen, saved sessions and recorded timelines (no torch, no GUI).

Three JSON documents share one ``format``/``version`` header (the layout is described in docs/state_files.md):

- ``sg3viz-capture``: one capture; ``request`` (``RenderRequest.to_dict()``) re-renders it, ``widgets`` reopens the
  GUI as it was, ``network`` describes the network that rendered it.
- ``sg3viz-session``: a saved session; ``widgets`` and (since this release) ``request``.
- ``sg3viz-timeline``: ``states``, a list of request dicts rendered one per video frame at ``fps``; ``view`` says
  what a frame shows (:data:`TIMELINE_VIEWS`). Instead of ``states`` it may hold ``keyframes`` (the visualizer's
  Keyframes pane writes them): :class:`KeyframeTimeline` interpolates between them (:func:`interpolate_states`).

A capture PNG carries its document in an ``iTXt`` chunk with the keyword :data:`PNG_STATE_KEY` (PNG 1.2 spec,
section 4.2.3.3), so the picture alone reopens the state; the JSON sidecar next to it holds the same document. A
recorded mp4 carries its timeline as QuickTime metadata under the same key (``engine.mp4_state``).

(About 700 lines, over the usual 600: the three documents and the keyframe interpolation share their readers and
checks, so they stay in one module.)
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any

import numpy as np

from engine.atomic_files import atomic_write_bytes
from engine.protocol import RenderRequest, clamp_request, request_errors

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


def write_json(path: str | os.PathLike, doc: dict) -> pathlib.Path:
    """Writes ``doc`` as indented JSON, atomically (a temporary file renamed over ``path``). Returns the path."""
    p = pathlib.Path(path)
    atomic_write_bytes(p, (json.dumps(doc, indent=2) + '\n').encode())
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
    atomic_write_bytes(p, buf.getvalue())
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
        return keyframes_from_doc(doc, name).timeline.expand(), float(doc.get('fps', 30.0)), doc.get('view', 'image')
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


# ----------------------------------------------------------------------------------------------------------------
# Keyframe timelines: interpolation between keyframes (docs/state_files.md, "Keyframes").

INTERPS = ('w', 'slerp_z')  # Per segment: 'w' lerps W (seed weights / explicit ws); 'slerp_z' slerps two seeds' z.
MAX_KEYFRAMES = 10_000


def _single_seed(r: RenderRequest) -> int | None:
    """The seed of a request whose latent is exactly one seed (weight 1, no explicit ws), else None."""
    seeds = [(s, w) for s, w in r.w0_seeds if w != 0.0]
    if r.ws is None and len(seeds) == 1 and seeds[0][1] == 1.0:
        return int(seeds[0][0])
    return None


def slerp_allowed(a: RenderRequest, b: RenderRequest) -> bool:
    """Whether the segment a -> b can interpolate by z slerp: both keyframes are one seed at weight 1 (no explicit
    ws); a fractional seed-grid position or a loaded latent has no single z."""
    return _single_seed(a) is not None and _single_seed(b) is not None


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


def _lerp(x: float, y: float, t: float) -> float:
    return x if x == y else (1.0 - t) * x + t * y


def _latent_changes(a: RenderRequest, b: RenderRequest, t: float, interp: str) -> dict[str, Any]:
    if interp == 'slerp_z':
        sa, sb = _single_seed(a), _single_seed(b)
        if sa is None or sb is None:
            raise ValueError(
                f"interp 'slerp_z' needs keyframes that are one seed each (weight 1, no loaded latent), got "
                f'w0_seeds {a.w0_seeds} -> {b.w0_seeds}{" with an explicit ws" if a.ws or b.ws else ""}; snap the '
                "seed (Latent: Snap) or use interp 'w'"
            )
        if sa == sb:
            return {'w0_seeds': ((sa, 1.0),), 'seed_blend': 'w'}
        return {'w0_seeds': ((sa, 1.0 - t), (sb, t)), 'seed_blend': 'slerp_z'}
    if (a.ws, a.w0_seeds, a.seed_blend) == (b.ws, b.w0_seeds, b.seed_blend):
        return {}  # The same latent in both keyframes is held exactly (e.g. a checkpoint scrub).
    for r in (a, b):
        if r.ws is None and r.seed_blend != 'w' and len(r.w0_seeds) > 1:
            raise ValueError(
                f'a keyframe blends w0_seeds {r.w0_seeds} by {r.seed_blend!r}; a W interpolation needs keyframes '
                "blended in W (seed_blend 'w') or one seed each"
            )
    if a.ws is not None and b.ws is not None and np.shape(a.ws) == np.shape(b.ws):
        ws = (1 - t) * np.asarray(a.ws, np.float64) + t * np.asarray(b.ws, np.float64)
        return {'ws': tuple(tuple(float(x) for x in row) for row in ws)}
    if a.ws is None and b.ws is None:
        return {'w0_seeds': _blend_seeds(a, b, t), 'seed_blend': 'w'}
    return {}  # A loaded latent on one side only: a's until the keyframe.


def _cutoff(a: RenderRequest, b: RenderRequest, t: float, num_ws: int | None) -> int | float | None:
    """The truncation cutoff a fraction t from a to b: linear (fractional; the renderer truncates w floor(c) by
    the fraction). None (all ws) counts as ``num_ws`` when that is known; otherwise a None on one side switches at
    the keyframe."""
    ca, cb = a.trunc_cutoff, b.trunc_cutoff
    if ca == cb:
        return ca
    if ca is None or cb is None:
        if num_ws is None:
            return ca
        ca, cb = (num_ws if ca is None else ca), (num_ws if cb is None else cb)
        if ca == cb:
            return a.trunc_cutoff
    return _lerp(float(ca), float(cb), t)


def _stylemix(a: RenderRequest, b: RenderRequest, t: float) -> dict[str, Any]:
    """Stylemix a fraction t from a to b: the weight lerps when both mix the same ws with the same seed; a keyframe
    without mixing counts as weight 0 on the other's ws and seed (the mix fades in or out); anything else switches
    at the keyframe."""
    ia, ib = tuple(a.stylemix_idx), tuple(b.stylemix_idx)
    if ia and ib and set(ia) == set(ib) and a.stylemix_seed == b.stylemix_seed:
        return {'stylemix_weight': _lerp(a.stylemix_weight, b.stylemix_weight, t)}
    if ia and not ib:
        return {'stylemix_weight': (1.0 - t) * a.stylemix_weight}
    if ib and not ia:
        return {'stylemix_idx': ib, 'stylemix_seed': b.stylemix_seed, 'stylemix_weight': t * b.stylemix_weight}
    return {}


def interpolate_states(
    a: RenderRequest, b: RenderRequest, t: float, *, interp: str = 'w', num_ws: int | None = None
) -> RenderRequest:
    """The state a fraction ``t`` in [0, 1] of the way from keyframe ``a`` to keyframe ``b``.

    Interpolated (docs/state_files.md, "Keyframes"):

    - the latent: ``interp='w'`` lerps W (the seed weights: the renderer's W blend is linear in them; or the
      explicit ``ws`` when both keyframes have one); ``interp='slerp_z'`` (both keyframes one seed) gives
      ``w0_seeds ((a, 1 - t), (b, t))`` with ``seed_blend='slerp_z'``: the renderer maps ``slerp(z_a, z_b, t)``;
    - ``trunc_psi``, ``img_scale_db``, the input transform's rotation angle (shortest way round) and translation:
      linearly;
    - ``trunc_cutoff``: linearly, fractional (None = all ws counts as ``num_ws`` when given);
    - ``stylemix_weight``: linearly when both keyframes mix the same ws with the same seed; a keyframe without
      mixing counts as weight 0 (the mix fades in or out).

    Everything else (network, layer, channels, noise, FFT settings, a stylemix change of seed or ws) is ``a``'s until
    ``t`` reaches 1.

    Raises:
        ValueError: ``t`` outside [0, 1]; an unknown ``interp``; 'slerp_z' between keyframes that are not one seed
            each; a W interpolation from a keyframe whose seeds blend by z slerp.
    """
    if not 0.0 <= t <= 1.0:
        raise ValueError(f'interpolate_states(): t must be in [0, 1], got {t!r}')
    if interp not in INTERPS:
        raise ValueError(f'interpolate_states(): interp must be one of {INTERPS}, got {interp!r}')
    if t == 0.0 or t == 1.0:
        _latent_changes(a, b, 0.5, interp)  # The same refusals at the ends as in between.
        return a if t == 0.0 else b
    changes: dict[str, Any] = {
        'trunc_psi': _lerp(a.trunc_psi, b.trunc_psi, t),
        'img_scale_db': _lerp(a.img_scale_db, b.img_scale_db, t),
        'trunc_cutoff': _cutoff(a, b, t, num_ws),
        **_latent_changes(a, b, t, interp),
        **_stylemix(a, b, t),
    }
    if a.input_transform != b.input_transform:  # Equal transforms are held exactly.
        ra, xa, ya = _decompose(a.input_transform)
        rb, xb, yb = _decompose(b.input_transform)
        d = (rb - ra + np.pi) % (2 * np.pi) - np.pi
        r, x, y = ra + t * d, (1 - t) * xa + t * xb, (1 - t) * ya + t * yb
        c, s = float(np.cos(r)), float(np.sin(r))
        changes['input_transform'] = ((c, s, x), (-s, c, y), (0.0, 0.0, 1.0))
    return a.replace(**changes)


@dataclasses.dataclass(frozen=True)
class KeyframeTimeline:
    """Keyframes with per-segment durations and interpolations, sampled at ``fps`` (one state per video frame).

    Segment i runs from keyframe i to i + 1 (with ``loop`` the last returns to keyframe 0) over ``round(durations[i]
    * fps)`` frames (at least 1); frame k of an n-frame segment is :func:`interpolate_states` at ``t = k / n``.
    Without ``loop`` the last keyframe is appended as the final frame.

    Attributes:
        states: the keyframes (>= 2).
        durations: seconds per segment (> 0): len(states) with loop, else len(states) - 1.
        fps: frames per second, (0, 1000].
        loop: the last segment returns to the first keyframe.
        interps: one of :data:`INTERPS` per segment (empty: all 'w').
        num_ws: the network's num_ws (lets a None cutoff interpolate), or None.

    Raises:
        ValueError: (on construction) fewer than 2 keyframes, wrong counts, a bad duration, fps or interp, a
            'slerp_z' segment whose keyframes are not one seed each, or more than MAX_TIMELINE_FRAMES frames.
    """

    states: tuple[RenderRequest, ...]
    durations: tuple[float, ...]
    fps: float = 30.0
    loop: bool = False
    interps: tuple[str, ...] = ()
    num_ws: int | None = None

    def __post_init__(self) -> None:
        n = len(self.states)
        need = n if self.loop else n - 1
        if not 2 <= n <= MAX_KEYFRAMES:
            raise ValueError(f'a keyframe timeline needs at least 2 keyframes (at most {MAX_KEYFRAMES}), got {n}')
        if len(self.durations) != need:
            raise ValueError(
                f'{n} keyframes need {need} segment durations (loop={self.loop}), got {len(self.durations)}'
            )
        _check_timeline_args(1, self.fps, 'image')
        for i, dur in enumerate(self.durations):
            if isinstance(dur, bool) or not isinstance(dur, (int, float)) or not 0 < dur < 1e6:
                raise ValueError(f'segment {i} duration must be seconds in (0, 1e6), got {dur!r}')
        if self.interps and len(self.interps) != need:
            raise ValueError(
                f'{n} keyframes need {need} segment interpolations (loop={self.loop}), got {len(self.interps)}'
            )
        for i in range(need):
            try:
                interpolate_states(self.states[i], self.states[(i + 1) % n], 0.0, interp=self.interp(i))
            except ValueError as e:
                raise ValueError(f'segment {i} (keyframe {i} -> {(i + 1) % n}): {e}') from e
        if self.num_frames > MAX_TIMELINE_FRAMES:
            raise ValueError(f'the timeline would have {self.num_frames} frames, more than {MAX_TIMELINE_FRAMES}')

    def interp(self, i: int) -> str:
        return self.interps[i] if self.interps else 'w'

    @property
    def segment_frames(self) -> tuple[int, ...]:
        """Frames per segment, ``max(1, round(duration * fps))``."""
        return tuple(max(1, round(d * self.fps)) for d in self.durations)

    @property
    def num_frames(self) -> int:
        return sum(self.segment_frames) + (0 if self.loop else 1)

    @property
    def duration_sec(self) -> float:
        """Length of the video in seconds (``num_frames / fps``)."""
        return self.num_frames / self.fps

    def frame_index(self, time_sec: float) -> int:
        """The video frame shown at ``time_sec`` (clamped into the timeline; a loop wraps around)."""
        k = int(np.floor(float(time_sec) * self.fps + 1e-9)) if np.isfinite(time_sec) else 0
        return k % self.num_frames if self.loop else min(max(k, 0), self.num_frames - 1)

    def frame(self, k: int) -> RenderRequest:
        """The state of video frame ``k`` (0 <= k < num_frames).

        Raises:
            ValueError: k out of range.
        """
        if not 0 <= k < self.num_frames:
            raise ValueError(f'frame(): k must be in 0..{self.num_frames - 1}, got {k}')
        n = len(self.states)
        for i, nf in enumerate(self.segment_frames):
            if k < nf:
                return interpolate_states(
                    self.states[i], self.states[(i + 1) % n], k / nf, interp=self.interp(i), num_ws=self.num_ws
                )
            k -= nf
        return self.states[-1]

    def keyframe_frames(self) -> tuple[int, ...]:
        """The frame index at which each keyframe is shown."""
        starts = np.concatenate([[0], np.cumsum(self.segment_frames)]).astype(int)
        return tuple(int(v) for v in starts[: len(self.states)])

    def expand(self) -> list[RenderRequest]:
        """Every frame's state (``frame(k)`` for k in range(num_frames))."""
        return [self.frame(k) for k in range(self.num_frames)]


def expand_keyframes(
    keyframes: list[RenderRequest],
    durations: list[float],
    fps: float,
    loop: bool = False,
    *,
    interps: list[str] | None = None,
    num_ws: int | None = None,
) -> list[RenderRequest]:
    """One state per video frame of a keyframe timeline (see :class:`KeyframeTimeline`).

    Raises:
        ValueError: see :class:`KeyframeTimeline`.
    """
    timeline = KeyframeTimeline(
        tuple(keyframes), tuple(durations), fps=fps, loop=loop, interps=tuple(interps or ()), num_ws=num_ws
    )
    return timeline.expand()


@dataclasses.dataclass(frozen=True)
class KeyframeDoc:
    """A keyframe timeline file: the timeline, what a frame shows (``view``), the ``network`` facts it was saved
    with, each keyframe's extra keys (e.g. the GUI's ``widgets`` state and ``thumbnail_png``), and each keyframe's
    ``duration`` / ``interp`` as written (the last keyframe of an open timeline keeps its own, unused, values)."""

    timeline: KeyframeTimeline
    view: str = 'image'
    network: dict | None = None
    extras: tuple[dict, ...] = ()
    durations: tuple[float, ...] = ()
    interps: tuple[str, ...] = ()


def keyframes_from_doc(doc: dict, name: str = 'timeline') -> KeyframeDoc:
    """Reads the keyframes form of an ``sg3viz-timeline`` document (docs/state_files.md).

    Raises:
        ValueError: a malformed ``keyframes`` list, a request that is malformed or out of range (what the renderer
            would refuse), a bad duration, interp, fps or view (the message names the keyframe).
    """
    kfs = doc.get('keyframes')
    if not isinstance(kfs, list) or not all(isinstance(k, dict) for k in kfs):
        raise ValueError(f'{name}: "keyframes" must be a list of {{"state": request, "duration": seconds}}')
    fps, view = doc.get('fps', 30.0), doc.get('view', 'image')
    _check_timeline_args(1, fps, view)
    loop = doc.get('loop', False)
    if not isinstance(loop, bool):
        raise ValueError(f'{name}: "loop" must be true or false, got {loop!r}')
    default_interp = doc.get('interp', 'w')
    if default_interp not in INTERPS:
        raise ValueError(f'{name}: "interp" must be one of {INTERPS}, got {default_interp!r}')
    network = doc.get('network') if isinstance(doc.get('network'), dict) else None
    num_ws = network.get('num_ws') if network is not None else None
    num_ws = num_ws if isinstance(num_ws, int) and not isinstance(num_ws, bool) and num_ws > 0 else None
    states = tuple(request_from_dict(k.get('state'), f'{name} keyframe {i}') for i, k in enumerate(kfs))
    for i, st in enumerate(states):  # Interpolation needs numbers in range: the renderer's checks, up front.
        try:
            problems = list(request_errors(st)) + list(clamp_request(st)[1])
        except (TypeError, ValueError) as e:
            problems = [str(e)]
        if problems:
            raise ValueError(f'{name} keyframe {i}: {"; ".join(problems)}')
    segs = kfs if loop else kfs[:-1]
    interps = tuple(k.get('interp', default_interp) for k in segs)
    for i, v in enumerate(interps):
        if v not in INTERPS:
            raise ValueError(f'{name} keyframe {i}: "interp" must be one of {INTERPS}, got {v!r}')
    try:
        timeline = KeyframeTimeline(
            states, tuple(k.get('duration') for k in segs), fps=float(fps), loop=loop, interps=interps, num_ws=num_ws
        )
    except ValueError as e:
        raise ValueError(f'{name}: {e}') from e
    extras = tuple({k: v for k, v in kf.items() if k not in ('state', 'duration', 'interp')} for kf in kfs)
    last = kfs[-1]
    last_dur = last.get('duration') if not loop else None
    if isinstance(last_dur, bool) or not isinstance(last_dur, (int, float)) or not 0 < last_dur < 1e6:
        last_dur = timeline.durations[-1]
    last_interp = last.get('interp', default_interp) if not loop else None
    per_dur = timeline.durations + (() if loop else (float(last_dur),))
    per_interp = interps + (() if loop else (last_interp if last_interp in INTERPS else 'w',))
    return KeyframeDoc(
        timeline, view=view, network=network, extras=extras, durations=tuple(float(d) for d in per_dur),
        interps=tuple(str(v) for v in per_interp),
    )  # fmt: skip


def make_keyframes_doc(
    timeline: KeyframeTimeline,
    *,
    view: str = 'image',
    network: dict | None = None,
    extras: list[dict] | tuple[dict, ...] = (),
    durations: list[float] | None = None,
    interps: list[str] | None = None,
) -> dict:
    """The ``sg3viz-timeline`` document of a keyframe timeline (inverse of :func:`keyframes_from_doc`).

    Args:
        timeline: the keyframes.
        view: what a frame shows (:data:`TIMELINE_VIEWS`).
        network: facts of the network (``pkl``, ``num_ws`` ...); ``num_ws`` lets a None cutoff interpolate.
        extras: per keyframe, more JSON keys (e.g. ``widgets``, ``thumbnail_png``).
        durations: per keyframe seconds to write (the GUI keeps one for the last keyframe of an open timeline
            too); default the timeline's.
        interps: per keyframe interpolation to write (likewise); default the timeline's.

    Raises:
        ValueError: an unknown view.
    """
    _check_timeline_args(1, timeline.fps, view)
    n = len(timeline.states)
    kfs = []
    for i, st in enumerate(timeline.states):
        kf: dict[str, Any] = {'state': st.to_dict()}
        if durations is not None:
            kf['duration'] = float(durations[i])
        elif i < len(timeline.durations):
            kf['duration'] = float(timeline.durations[i])
        if interps is not None:
            kf['interp'] = str(interps[i])
        elif i < len(timeline.durations):
            kf['interp'] = timeline.interp(i)
        kf.update(extras[i] if i < len(extras) else {})
        kfs.append(kf)
    assert len(kfs) == n
    return {
        'format': TIMELINE_FORMAT,
        'version': STATE_VERSION,
        'fps': float(timeline.fps),
        'view': view,
        'loop': bool(timeline.loop),
        'network': network,
        'keyframes': kfs,
    }


def load_keyframes(path: str | os.PathLike) -> KeyframeDoc:
    """Reads a keyframe timeline file.

    Raises:
        ValueError: see :func:`read_state_doc` and :func:`keyframes_from_doc`; also a timeline without keyframes.
    """
    doc = read_state_doc(path, (TIMELINE_FORMAT,))
    name = pathlib.Path(path).name
    if 'keyframes' not in doc:
        raise ValueError(f'{name} is a per-frame timeline ("states"), not a keyframe timeline ("keyframes")')
    return keyframes_from_doc(doc, name)
