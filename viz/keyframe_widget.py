"""Keyframes widget: keyframe timelines in the GUI (issue 15) -- add the current state as a keyframe (thumbnail strip),
reorder / delete / jump to, per-segment duration and interpolation (W lerp or z slerp), a preview scrub slider,
Play / Pause / Loop at a chosen fps, Save / Load as the keyframes form of an ``sg3viz-timeline`` file
(docs/state_files.md, ``engine.states.KeyframeTimeline``) and Render video through the Record pane.

While previewing (scrubbing or playing) :meth:`KeyframeWidget.override` replaces the request the app submits by the
timeline's state at the preview time: the frame ``floor(time_sec * fps)`` of the video the timeline renders to, so the
preview shows exactly what ``gen_video.py --timeline`` writes.

(About 700 lines, over the usual 600: the pane is an editor, a player and a file format in one, kept together so that
its state, actions and drawing stay in one place.)
"""

from __future__ import annotations

import base64
import io
import logging
import math
import pathlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from imgui_bundle import imgui

from engine.protocol import RenderRequest, clamp_request, request_errors
from engine.states import (
    INTERPS,
    TIMELINE_FORMAT,
    KeyframeTimeline,
    load_keyframes,
    make_keyframes_doc,
    read_state_doc,
    slerp_allowed,
    write_json,
)
from viz.widget import Widget

logger = logging.getLogger(__name__)

FPS_RANGE = (1, 120)  # timeline frames per second (the Record pane's range)
DURATION_RANGE_SEC = (0.05, 3600.0)  # one segment
DEFAULT_DURATION_SEC = 2.0
THUMB_PX = 64  # longest side of a stored thumbnail
MAX_GUI_KEYFRAMES = 256
INTERP_LABELS = {'w': 'W lerp', 'slerp_z': 'z slerp'}
# Widgets whose state a keyframe does not restore: app settings and files, not part of the picture.
NOT_RESTORED = ('keyframes', 'performance', 'session', 'capture', 'record')


@dataclass
class Keyframe:
    """One keyframe: the request the app submitted (clamped, stamp 0), the widgets' session state (``jump to``
    restores it), the segment that starts here (``duration`` seconds, ``interp``) and a thumbnail (uint8
    [h, w, 3], longest side <= THUMB_PX, or None until the keyframe's image has been rendered)."""

    request: RenderRequest
    widgets: dict = field(default_factory=dict)
    duration: float = DEFAULT_DURATION_SEC
    interp: str = 'w'
    thumb: np.ndarray | None = None
    tex: Any = None  # gui_utils.gl_utils.Texture of the thumbnail (made while drawing)
    thumb_b64: str | None = None  # the thumbnail as base64 PNG (made once, for sessions and files)

    def thumb_png_b64(self) -> str | None:
        if self.thumb_b64 is None and self.thumb is not None:
            self.thumb_b64 = thumb_to_b64(self.thumb)
        return self.thumb_b64


def make_thumbnail(img: np.ndarray, max_side: int = THUMB_PX) -> np.ndarray:
    """``img`` (uint8 [H, W, 3]) scaled down (box filter) so its longest side is at most ``max_side``."""
    from PIL import Image

    img = np.ascontiguousarray(np.asarray(img, np.uint8)[..., :3])
    h, w = img.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s >= 1.0:
        return img.copy()
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BOX))


def thumb_to_b64(thumb: np.ndarray | None) -> str | None:
    if thumb is None:
        return None
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(thumb).save(buf, format='PNG')
    return base64.b64encode(buf.getvalue()).decode('ascii')


def thumb_from_b64(text: Any) -> np.ndarray | None:
    """A thumbnail from a file (None when missing or not a small PNG: a bad thumbnail never fails a load)."""
    if not isinstance(text, str) or len(text) > 1 << 20:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(base64.b64decode(text, validate=True)), formats=['PNG']) as im:
            if max(im.size) > 4 * THUMB_PX:
                return None
            return np.asarray(im.convert('RGB'))
    except (ValueError, OSError, UnidentifiedImageError):
        return None


def clamp_number(name: str, value: Any, lo: float, hi: float, default: float) -> tuple[float, str | None]:
    """``value`` as a float in [lo, hi] (NaN / non-numbers -> ``default``) and a note when it changed."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default, f'{name} {value!r} is not a number; using {default:g}'
    if not math.isfinite(v) and not math.isinf(v):
        return default, f'{name} {value!r} is not a number; using {default:g}'
    c = min(max(v, lo), hi)
    return c, (f'{name} {value!r} is outside {lo:g}..{hi:g}; clamped to {c:g}' if c != v else None)


class KeyframeWidget(Widget):
    """The Keyframes pane (see the module docstring).

    State: ``keyframes`` (list of {state, widgets, duration, interp, thumbnail_png}), ``fps``, ``loop``, ``time_sec``
    (preview position), ``preview`` (the preview replaces the live view), ``play_anim`` (playing; the ``anim``
    suffix keeps the window drawing at its FPS limit), ``path`` (timeline JSON file), ``selected`` (keyframe index).
    """

    TITLE = 'Keyframes'
    KEY = 'keyframes'
    STATE_KEYS = ('keyframes', 'fps', 'loop', 'time_sec', 'preview', 'play_anim', 'path', 'selected')
    DEFAULT_OPEN = False

    def __init__(self, viz=None) -> None:
        super().__init__(viz)
        self.keyframes: list[Keyframe] = []  # get_state / set_state convert to and from JSON dicts
        self.fps = 30
        self.loop = True
        self.time_sec = 0.0
        self.preview = False
        self.play_anim = False
        self.path = 'my_keyframes.json'
        self.selected = -1
        # Runtime.
        self.status = ''
        self.live_request: RenderRequest | None = None  # the app's request before override (last frame)
        self.shown_request: RenderRequest | None = None  # what override returned (last frame)
        self.rects: dict[str, list[float]] = {}  # control -> [x, y, w, h] in window coordinates (tests)
        self._timeline_key: tuple | None = None
        self._timeline: KeyframeTimeline | None = None
        self._timeline_error: str | None = None
        self._dead_textures: list[Any] = []

    # ---- state ------------------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.STATE_KEYS if k != 'keyframes'}
        out['keyframes'] = [self._kf_to_json(kf) for kf in self.keyframes]
        return out

    def set_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if 'keyframes' in state:
            kfs = state.pop('keyframes')
            try:
                self._replace_keyframes(self._kfs_from_json(kfs if isinstance(kfs, list) else [], 'session'))
            except ValueError as e:
                self.status = str(e)
                self.notify(str(e))
        super().set_state(state)

    @staticmethod
    def _kf_to_json(kf: Keyframe) -> dict:
        d: dict[str, Any] = {'state': kf.request.to_dict(), 'duration': kf.duration, 'interp': kf.interp}
        d['widgets'] = kf.widgets
        b64 = kf.thumb_png_b64()
        if b64 is not None:
            d['thumbnail_png'] = b64
        return d

    def _kfs_from_json(self, items: list, where: str) -> list[Keyframe]:
        """Keyframes from JSON dicts; requests clamped into range (with a note), unrenderable ones refused.

        Raises:
            ValueError: a malformed or unrenderable keyframe (names it).
        """
        out = []
        for i, d in enumerate(items[:MAX_GUI_KEYFRAMES]):
            if not isinstance(d, dict) or not isinstance(d.get('state'), dict):
                raise ValueError(f'{where}: keyframe {i} must be an object with a "state" request')
            try:
                req, notes = clamp_request(RenderRequest.from_dict(d['state']))
            except (TypeError, ValueError) as e:
                raise ValueError(f'{where}: keyframe {i} holds a malformed request ({e})') from e
            for note in notes:
                self.notify(f'keyframe {i}: {note}')
            errors = request_errors(req)
            if errors:
                raise ValueError(f'{where}: keyframe {i}: {"; ".join(errors)}')
            dur, note = clamp_number('duration', d.get('duration', DEFAULT_DURATION_SEC), *DURATION_RANGE_SEC,
                                     DEFAULT_DURATION_SEC)  # fmt: skip
            if note:
                self.notify(f'keyframe {i}: {note}')
            interp = d.get('interp', 'w') if d.get('interp', 'w') in INTERPS else 'w'
            widgets = d.get('widgets') if isinstance(d.get('widgets'), dict) else {}
            out.append(Keyframe(req.replace(stamp=0), widgets, dur, interp, thumb_from_b64(d.get('thumbnail_png'))))
        if len(items) > MAX_GUI_KEYFRAMES:
            self.notify(f'{where}: only the first {MAX_GUI_KEYFRAMES} keyframes are kept')
        return out

    def _replace_keyframes(self, kfs: list[Keyframe]) -> None:
        for kf in self.keyframes:
            self._drop_texture(kf)
        self.keyframes = kfs
        self._timeline_key = None

    def validate(self) -> None:
        fps, note = clamp_number('fps', self.fps, *FPS_RANGE, 30)
        if note:
            self.notify(note)
        self.fps = int(round(fps))
        self.loop = bool(self.loop)
        self.preview = bool(self.preview)
        self.play_anim = bool(self.play_anim)
        self.path = self.path if isinstance(self.path, str) else 'my_keyframes.json'
        t, _ = clamp_number('time', self.time_sec, 0.0, 1e7, 0.0)
        self.time_sec = float(t)
        try:
            sel = int(self.selected)
        except (TypeError, ValueError, OverflowError):
            sel = -1
        self.selected = min(max(sel, -1), len(self.keyframes) - 1)

    # ---- the timeline -----------------------------------------------------------------------------------------
    def effective_interp(self, i: int) -> str:
        """Keyframe i's segment interpolation as rendered: 'slerp_z' only where both ends are one seed."""
        n = len(self.keyframes)
        kf = self.keyframes[i]
        if kf.interp == 'slerp_z' and n >= 2 and slerp_allowed(kf.request, self.keyframes[(i + 1) % n].request):
            return 'slerp_z'
        return 'w'

    def timeline(self) -> KeyframeTimeline | None:
        """The timeline of the current keyframes (None with fewer than 2, or when invalid: see ``timeline_error``)."""
        num_ws = self.net.num_ws if self.net is not None else None
        n = len(self.keyframes)
        segs = n if self.loop else n - 1
        key = (tuple((kf.request, kf.duration, kf.interp) for kf in self.keyframes), self.fps, self.loop, num_ws)
        if key != self._timeline_key:
            self._timeline_key = key
            self._timeline, self._timeline_error = None, None
            if n >= 2:
                try:
                    self._timeline = KeyframeTimeline(
                        tuple(kf.request for kf in self.keyframes),
                        tuple(kf.duration for kf in self.keyframes[:segs]),
                        fps=float(self.fps), loop=self.loop,
                        interps=tuple(self.effective_interp(i) for i in range(segs)), num_ws=num_ws,
                    )  # fmt: skip
                except ValueError as e:
                    self._timeline_error = str(e)
        return self._timeline

    def frame_index(self) -> int | None:
        tl = self.timeline()
        return None if tl is None else tl.frame_index(self.time_sec)

    def override(self, req: RenderRequest) -> RenderRequest:
        """The request to submit this frame: the timeline's state at ``time_sec`` while previewing, else ``req``.

        ``req`` is the app's clamped request of this frame (remembered as the live request: Add keyframe stores it).
        """
        self.live_request = req
        out = req
        if self.preview:
            tl = self.timeline()
            if tl is None:
                self.preview = self.play_anim = False
            else:
                out = tl.frame(tl.frame_index(self.time_sec))
        self.shown_request = out
        return out

    def update_request(self, args, dt) -> None:
        if not self.play_anim:
            return
        tl = self.timeline()
        if tl is None:
            self.play_anim = False
            return
        self.preview = True
        self.time_sec += max(float(dt), 0.0)
        if self.time_sec >= tl.duration_sec:
            if self.loop:
                self.time_sec = math.fmod(self.time_sec, tl.duration_sec)
            else:
                self.time_sec = (tl.num_frames - 1) / tl.fps
                self.play_anim = False

    # ---- actions ----------------------------------------------------------------------------------------------
    def add_keyframe(self) -> bool:
        """Appends the live state (the request the app submitted, and the widgets' session state) after the selected
        keyframe (at the end when none is selected). Stops a preview first: the keyframe is what the widgets show."""
        req = self.live_request
        if req is None:
            self.status = 'Nothing rendered yet: wait for the first image, then add keyframes'
            return False
        if len(self.keyframes) >= MAX_GUI_KEYFRAMES:
            self.status = f'At most {MAX_GUI_KEYFRAMES} keyframes'
            return False
        self.stop_preview()
        widgets = {}
        if self.viz is not None:
            widgets = {w.KEY: w.get_state() for w in self.viz.widgets if w.STATE_KEYS and w.KEY not in NOT_RESTORED}
        kf = Keyframe(req.replace(stamp=0, return_ws=False), widgets)
        if self.keyframes:
            prev = self.keyframes[self.selected if self.selected >= 0 else -1]
            kf.duration, kf.interp = prev.duration, prev.interp
        pos = self.selected + 1 if 0 <= self.selected < len(self.keyframes) - 1 else len(self.keyframes)
        self.keyframes.insert(pos, kf)
        self.selected = pos
        self._take_thumbnail(kf)
        self.status = f'Added keyframe {pos + 1} of {len(self.keyframes)}'
        return True

    def _take_thumbnail(self, kf: Keyframe) -> None:
        """Thumbnail of the displayed image when it answers the keyframe's request (else later, in on_result)."""
        view = self.view
        if kf.thumb is None and view.image is not None and view.image_request == kf.request and view.error is None:
            kf.thumb, kf.thumb_b64 = make_thumbnail(view.image), None
            self._drop_texture(kf)

    def on_result(self, result) -> None:
        for kf in self.keyframes:
            if kf.thumb is None:
                self._take_thumbnail(kf)

    def move(self, i: int, step: int) -> None:
        """Moves keyframe i left (step -1) or right (+1)."""
        j = i + step
        if 0 <= i < len(self.keyframes) and 0 <= j < len(self.keyframes):
            self.keyframes[i], self.keyframes[j] = self.keyframes[j], self.keyframes[i]
            self.selected = j

    def delete(self, i: int) -> None:
        if 0 <= i < len(self.keyframes):
            self._drop_texture(self.keyframes.pop(i))
            self.selected = min(i, len(self.keyframes) - 1)
            if len(self.keyframes) < 2:
                self.stop_preview()

    def jump_to(self, i: int) -> None:
        """Restores keyframe i's widget state (the GUI as it was when the keyframe was added) and shows it live."""
        if not 0 <= i < len(self.keyframes):
            return
        kf = self.keyframes[i]
        self.stop_preview()
        self.selected = i
        if self.viz is not None:
            self.viz.set_session({'widgets': kf.widgets})
            if kf.request.ws is not None:
                self.viz.latent.set_loaded_ws(kf.request.ws, f'keyframe {i + 1} latent')
        tl = self.timeline()
        if tl is not None:
            self.time_sec = tl.keyframe_frames()[i] / tl.fps
        self.status = f'Keyframe {i + 1}'

    def set_duration(self, i: int, value: Any) -> None:
        dur, note = clamp_number('duration', value, *DURATION_RANGE_SEC, DEFAULT_DURATION_SEC)
        if note:
            self.notify(note)
        if 0 <= i < len(self.keyframes):
            self.keyframes[i].duration = dur

    def set_interp(self, i: int, interp: str) -> None:
        if 0 <= i < len(self.keyframes) and interp in INTERPS:
            self.keyframes[i].interp = interp

    def play(self) -> None:
        tl = self.timeline()
        if tl is None:
            self.status = self._timeline_error or 'Add at least 2 keyframes to play'
            return
        if not self.loop and self.time_sec >= (tl.num_frames - 1) / tl.fps:
            self.time_sec = 0.0
        self.preview = self.play_anim = True

    def pause(self) -> None:
        self.play_anim = False

    def scrub(self, time_sec: Any) -> None:
        """Shows the timeline at ``time_sec`` (clamped into the timeline, with a note when outside)."""
        tl = self.timeline()
        if tl is None:
            self.status = self._timeline_error or 'Add at least 2 keyframes to preview'
            return
        hi = (tl.num_frames - 1) / tl.fps
        t, note = clamp_number('time', time_sec, 0.0, hi, 0.0)
        if note:
            self.notify(note)
        self.time_sec = t
        self.preview = True

    def stop_preview(self) -> None:
        """Back to the live view (the widgets' state)."""
        self.preview = self.play_anim = False

    # ---- files and video --------------------------------------------------------------------------------------
    def network_facts(self) -> dict | None:
        net = self.net
        return None if net is None else {'pkl': net.pkl or None, 'num_ws': net.num_ws, 'w_dim': net.w_dim}

    def save(self, path: str | None = None) -> bool:
        """Writes the keyframes form of an ``sg3viz-timeline`` (atomically) to ``path`` (default ``self.path``)."""
        path = path or self.path
        tl = self.timeline()
        if tl is None:
            self.status = f'Save failed: {self._timeline_error or "add at least 2 keyframes first"}'
            return False
        extras = [{'widgets': kf.widgets, **({'thumbnail_png': b} if (b := kf.thumb_png_b64()) else {})}
                  for kf in self.keyframes]  # fmt: skip
        doc = make_keyframes_doc(
            tl, network=self.network_facts(), extras=extras, durations=[kf.duration for kf in self.keyframes],
            interps=[self.effective_interp(i) for i in range(len(self.keyframes))],
        )  # fmt: skip
        try:
            written = write_json(path, doc)
        except OSError as e:
            self.status = f'Save failed: {e}'
            logger.error('%s', self.status)
            return False
        self.path = str(path)
        self.status = f'Saved {written.name}: {tl.num_frames} frames, {tl.duration_sec:.2f} s at {tl.fps:g} fps'
        return True

    def load(self, path: str | None = None) -> bool:
        """Reads a keyframe timeline; on any problem shows the error and keeps the current keyframes."""
        path = path or self.path
        try:
            doc = load_keyframes(path)
            name = pathlib.Path(path).name
            items = [{'state': s.to_dict(), 'duration': d, 'interp': it, **ex}
                     for s, d, it, ex in zip(doc.timeline.states, doc.durations, doc.interps, doc.extras)]  # fmt: skip
            kfs = self._kfs_from_json(items, name)
        except ValueError as e:
            self.status = f'Load failed: {e}'
            logger.error('%s', self.status)
            self.notify(self.status)
            return False
        self.stop_preview()
        self._replace_keyframes(kfs)
        self.fps = int(round(min(max(doc.timeline.fps, FPS_RANGE[0]), FPS_RANGE[1])))
        self.loop = doc.timeline.loop
        self.time_sec = 0.0
        self.selected = 0
        self.path = str(path)
        self.status = f'Loaded {len(kfs)} keyframes from {pathlib.Path(path).name}'
        return True

    @staticmethod
    def is_keyframe_file(path: str) -> bool:
        """Whether ``path`` is a keyframe timeline JSON (what a drop onto the window loads into this pane)."""
        if not str(path).lower().endswith('.json'):
            return False
        try:
            return 'keyframes' in read_state_doc(path, (TIMELINE_FORMAT,))
        except ValueError:
            return False

    def load_dropped(self, path: str) -> bool:
        """A keyframe timeline dropped onto the window: loaded into this pane, and its first keyframe shown (its
        panes restored when the file has them, else the timeline's first frame previewed)."""
        if not self.load(path):
            return False
        if self.keyframes[0].widgets:
            self.jump_to(0)
        else:
            self.scrub(0.0)
        self.status = f'Loaded {len(self.keyframes)} keyframes from {pathlib.Path(path).name}'
        return True

    def render_video(self) -> bool:
        """Renders the timeline to a video through the Record pane (``viz.record.render_states``)."""
        tl = self.timeline()
        if tl is None:
            self.status = f'Render failed: {self._timeline_error or "add at least 2 keyframes first"}'
            return False
        record = getattr(self.viz, 'record', None)
        render_states = getattr(record, 'render_states', None)
        if render_states is None:
            self.status = 'Render video needs the Record pane; save the timeline and run gen_video.py --timeline FILE'
            return False
        name = pathlib.Path(self.path).stem or 'keyframes'
        job = render_states(tl.expand(), fps=float(tl.fps), view=None, name=name, widgets=self.keyframes[0].widgets)
        if job is None:
            self.status = f'Render video did not start: {getattr(record, "status", "") or "see the Record pane"}'
            return False
        self.status = f'Rendering {tl.num_frames} frames ({name}) in the Record pane'
        return True

    def script_action(self, action: Any) -> None:
        """The script hook's ``{"keyframes": ...}`` step: 'add', 'play', 'pause', 'live', 'save', 'load', 'render',
        or one of {"select" | "delete" | "left" | "right" | "jump": i}, {"scrub": seconds}, {"save" | "load": path},
        {"duration": [i, seconds]}, {"interp": [i, 'w' | 'slerp_z']}.

        Raises:
            ValueError: an unknown action.
        """
        simple = {'add': self.add_keyframe, 'play': self.play, 'pause': self.pause, 'live': self.stop_preview,
                  'save': self.save, 'load': self.load, 'render': self.render_video}  # fmt: skip
        if isinstance(action, str) and action in simple:
            simple[action]()
            return
        if not isinstance(action, dict) or len(action) != 1:
            raise ValueError(f'keyframes action must be one of {sorted(simple)} or a one-key object, got {action!r}')
        ((k, v),) = action.items()
        per_index = {'select': lambda i: setattr(self, 'selected', i), 'delete': self.delete, 'jump': self.jump_to,
                     'left': lambda i: self.move(i, -1), 'right': lambda i: self.move(i, 1)}  # fmt: skip
        if k in per_index:
            per_index[k](int(v))
        elif k == 'scrub':
            self.scrub(v)
        elif k in ('save', 'load'):
            self.save(str(v)) if k == 'save' else self.load(str(v))
        elif k == 'duration':
            self.set_duration(int(v[0]), v[1])
        elif k == 'interp':
            self.set_interp(int(v[0]), str(v[1]))
        else:
            raise ValueError(f'keyframes action {k!r} is unknown')

    def dump(self) -> dict:
        """Outcome for the script hook's dump_state (and tests driving real input: ``rects``)."""
        tl = self.timeline()
        return {
            'count': len(self.keyframes),
            'status': self.status,
            'timeline_error': self._timeline_error,
            'num_frames': None if tl is None else tl.num_frames,
            'frame': self.frame_index(),
            'thumbs': [None if kf.thumb is None else list(kf.thumb.shape) for kf in self.keyframes],
            'requests': [kf.request.to_dict() for kf in self.keyframes],
            'shown_request': None if self.shown_request is None else self.shown_request.to_dict(),
            'rects': dict(self.rects),
        }

    # ---- drawing ----------------------------------------------------------------------------------------------
    def _drop_texture(self, kf: Keyframe) -> None:
        if kf.tex is not None:
            self._dead_textures.append(kf.tex)
            kf.tex = None

    def _rect(self, name: str) -> None:
        p, s = imgui.get_item_rect_min(), imgui.get_item_rect_size()
        self.rects[name] = [float(p.x), float(p.y), float(s.x), float(s.y)]

    def draw(self) -> None:
        for tex in self._dead_textures:
            tex.delete()
        self._dead_textures = []
        fs = self.font_size
        if imgui.button('Add keyframe'):
            self.add_keyframe()
        self._rect('add')
        imgui.same_line()
        tl = self.timeline()
        if tl is not None:
            imgui.text_disabled(f'{len(self.keyframes)} keyframes, {tl.duration_sec:.2f} s, {tl.num_frames} frames')
        else:
            imgui.text_disabled(f'{len(self.keyframes)} keyframe{"" if len(self.keyframes) == 1 else "s"}')
        self._draw_strip(fs)
        if 0 <= self.selected < len(self.keyframes):
            self._draw_selected(fs, self.selected)
        self._draw_transport(fs, tl)
        self._draw_files(fs)
        if self._timeline_error:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_colored(imgui.ImVec4(1.0, 0.5, 0.45, 1.0), self._timeline_error)
            imgui.pop_text_wrap_pos()
        if self.status:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_disabled(self.status)
            imgui.pop_text_wrap_pos()

    def _draw_strip(self, fs: float) -> None:
        """The thumbnail strip: one button per keyframe, in order (click selects)."""
        from gui_utils.gl_utils import Texture

        if not self.keyframes:
            return
        size = fs * 4.2
        style = imgui.get_style()
        height = (size + 2 * style.frame_padding.y + style.item_spacing.y + imgui.get_text_line_height()
                  + 2 * style.window_padding.y + 2)  # fmt: skip
        width = len(self.keyframes) * (size + 2 * style.frame_padding.x + style.item_spacing.x)
        if width + 2 * style.window_padding.x > imgui.get_content_region_avail().x:
            height += style.scrollbar_size  # the horizontal scrollbar
        flags = imgui.WindowFlags_.horizontal_scrollbar | imgui.WindowFlags_.no_scroll_with_mouse
        imgui.begin_child('##kfstrip', imgui.ImVec2(0, height), imgui.ChildFlags_.borders, flags)
        for i, kf in enumerate(self.keyframes):
            if i:
                imgui.same_line()
            imgui.begin_group()
            sel = i == self.selected
            if sel:
                imgui.push_style_color(imgui.Col_.button, imgui.ImVec4(0.9, 0.6, 0.1, 1.0))
            if kf.thumb is not None:
                if kf.tex is None:
                    kf.tex = Texture(kf.thumb, nearest=False)
                h, w = kf.thumb.shape[:2]
                sw, sh = (size, size * h / w) if w >= h else (size * w / h, size)
                clicked = imgui.image_button(f'##kf{i}', imgui.ImTextureRef(kf.tex.gl_id), imgui.ImVec2(sw, sh))
            else:
                clicked = imgui.button(f'...##kf{i}', imgui.ImVec2(size, size))
            if sel:
                imgui.pop_style_color()
            self._rect(f'thumb{i}')
            if clicked:
                self.selected = i
            if imgui.is_item_hovered():
                imgui.set_tooltip(f'Keyframe {i + 1}: click to select (double-click jumps to it)')
                if imgui.is_mouse_double_clicked(0):
                    self.jump_to(i)
            imgui.text_disabled(f'{i + 1} {kf.duration:g}s' + (' z' if self.effective_interp(i) == 'slerp_z' else ''))
            imgui.end_group()
        imgui.end_child()

    def _draw_selected(self, fs: float, i: int) -> None:
        n = len(self.keyframes)
        kf = self.keyframes[i]
        imgui.text(f'Keyframe {i + 1}:')
        for label, name, action, ok in (('<', 'left', lambda: self.move(i, -1), i > 0),
                                        ('>', 'right', lambda: self.move(i, 1), i < n - 1),
                                        ('Delete', 'delete', lambda: self.delete(i), True),
                                        ('Jump to', 'jump', lambda: self.jump_to(i), True)):  # fmt: skip
            imgui.same_line()
            imgui.begin_disabled(not ok)
            if imgui.button(f'{label}##kf'):
                action()
            imgui.end_disabled()
            self._rect(name)
        if i >= len(self.keyframes):  # deleted just now
            return
        has_segment = self.loop or i < n - 1
        imgui.begin_disabled(not has_segment)
        imgui.set_next_item_width(fs * 6)
        changed, dur = imgui.input_float('Duration s##kf', kf.duration, 0.1, 1.0, '%.2f')
        self._rect('duration')
        if changed:
            self.set_duration(i, dur)
        imgui.same_line()
        can_slerp = n >= 2 and slerp_allowed(kf.request, self.keyframes[(i + 1) % n].request)
        imgui.set_next_item_width(fs * 6.5)
        current = self.effective_interp(i) if n >= 2 else kf.interp
        if imgui.begin_combo('Interp##kf', INTERP_LABELS[current]):
            for key, label in INTERP_LABELS.items():
                enabled = key == 'w' or can_slerp
                if imgui.selectable(label, key == current, 0 if enabled else imgui.SelectableFlags_.disabled)[0]:
                    self.set_interp(i, key)
            imgui.end_combo()
        self._rect('interp')
        imgui.end_disabled()
        if imgui.is_item_hovered(imgui.HoveredFlags_.allow_when_disabled):
            imgui.set_tooltip(
                'How the latent moves to the next keyframe: W lerp, or z slerp (the great circle between the two '
                "seeds' z; only when both keyframes are one whole seed)"
                if has_segment
                else 'The last keyframe of a timeline without Loop starts no segment'
            )

    def _draw_transport(self, fs: float, tl: KeyframeTimeline | None) -> None:
        imgui.begin_disabled(tl is None)
        if imgui.button('Pause##kf' if self.play_anim else 'Play##kf', imgui.ImVec2(fs * 3.5, 0)):
            self.pause() if self.play_anim else self.play()
        self._rect('play')
        imgui.same_line()
        imgui.begin_disabled(not self.preview)
        if imgui.button('Live##kf'):
            self.stop_preview()
        self._rect('live')
        imgui.end_disabled()
        imgui.same_line()
        _, self.loop = imgui.checkbox('Loop##kf', self.loop)
        imgui.same_line()
        imgui.set_next_item_width(fs * 5)
        changed, fps = imgui.input_int('fps##kf', int(self.fps), 1, 10)
        self._rect('fps')
        if changed:
            v, note = clamp_number('fps', fps, *FPS_RANGE, 30)
            if note:
                self.notify(note)
            self.fps = int(round(v))
        hi = 0.0 if tl is None else (tl.num_frames - 1) / tl.fps
        imgui.set_next_item_width(-fs * 0.5)
        k = self.frame_index()
        fmt = '%.2f s' + ('' if tl is None else f' (frame {k + 1 if k is not None else 0}/{tl.num_frames})')
        changed, t = imgui.slider_float('##kfscrub', min(self.time_sec, hi), 0.0, max(hi, 1e-6), fmt,
                                        imgui.SliderFlags_.always_clamp)  # fmt: skip
        self._rect('scrub')
        if changed:
            self.play_anim = False
            self.scrub(t)
        imgui.end_disabled()
        if self.preview:
            imgui.text_colored(imgui.ImVec4(0.9, 0.7, 0.2, 1.0), 'Previewing the timeline (Live: back to the widgets)')

    def _draw_files(self, fs: float) -> None:
        style = imgui.get_style()
        buttons = sum(imgui.calc_text_size(t).x for t in ('Save', 'Load')) + 4 * style.frame_padding.x
        imgui.set_next_item_width(-buttons - 2 * style.item_spacing.x)
        _, self.path = imgui.input_text('##kfpath', self.path)
        if imgui.is_item_hovered():
            imgui.set_tooltip('Timeline JSON (sg3viz-timeline keyframes; gen_video.py --timeline renders it)')
        imgui.same_line()
        if imgui.button('Save##kf'):
            self.save()
        self._rect('save')
        imgui.same_line()
        if imgui.button('Load##kf'):
            self.load()
        self._rect('load')
        if imgui.button('Render video##kf'):
            self.render_video()
        self._rect('render')
