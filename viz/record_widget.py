"""Record widget: record whatever the window shows as a video, rendered deterministically afterwards.

While recording, the request the visualizer submits each frame (after a keyframe preview's override) is sampled at
the video's frame times on the GUI clock (``dt`` of each frame; a fixed step in scripted runs): a video frame that
falls between two GUI frames gets ``engine.states.interpolate_states`` of their requests, so a slow GUI still gives
a smooth video (discrete settings -- layer, channels, network -- switch at the GUI frame where they changed). The
window keeps drawing at its FPS limit while recording. After Stop, the render process renders the states as the
``'render_video'`` job (``engine.recording``): progress, Cancel, the live view keeps updating; the result is an mp4
(H.264, the timeline inside) or a PNG sequence with the timeline JSON beside it, named like captures
(``NNNNN-record.mp4`` + ``NNNNN-record.json`` in the capture directory by default). ``gen_video.py --timeline`` on
that JSON (or the mp4) reproduces the video frame for frame. Other widgets render their own state lists through
:meth:`RecordWidget.render_states` (the keyframe editor, the checkpoint scrubber). This module never imports torch.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import re
from typing import Any

from imgui_bundle import imgui

from engine.protocol import RenderRequest
from engine.states import MAX_STATE_BYTES, TIMELINE_VIEWS, interpolate_states
from viz.capture_widget import next_capture_index
from viz.widget import Widget, edited

logger = logging.getLogger(__name__)

VIEWS = TIMELINE_VIEWS  # 'image', 'fft', 'image+fft'
VIEW_LABELS = {'image': 'Image', 'fft': 'FFT', 'image+fft': 'Image + FFT'}
FORMATS = ('mp4', 'png')
FORMAT_LABELS = {'mp4': 'mp4 (H.264)', 'png': 'PNG sequence'}
FPS_RANGE = (1, 120)
HEIGHT_RANGE_PX = (16, 4320)  # engine.recording.HEIGHT_RANGE_PX
MAX_RECORD_SEC = 600.0  # 10 minutes of video
MAX_RECORD_FRAMES = 18_000
MAX_RECORD_BYTES = MAX_STATE_BYTES * 3 // 4  # the timeline JSON must stay readable (engine.states.MAX_STATE_BYTES)
_NAME_OK = re.compile(r'^[^/\\\x00]+$')
_EPS = 1e-9


def state_json_bytes(req: RenderRequest) -> int:
    """A generous estimate of ``req``'s size in the timeline JSON (an explicit latent dominates: ~20 bytes/float)."""
    n = 600 + 30 * len(req.w0_seeds)
    if req.ws is not None:
        n += 20 * sum(len(row) for row in req.ws)
    return n


class Recorder:
    """Samples requests at video frame times (pure logic, no GUI; :class:`RecordWidget` owns one).

    Args:
        fps: video frames per second.
    """

    def __init__(self, fps: float) -> None:
        self.fps = float(fps)
        self.states: list[RenderRequest] = []
        self.time_sec = 0.0  # GUI time since the first sample
        self.num_bytes = 0
        self.limit_note: str | None = None  # why sampling stopped early (a limit), else None
        self._prev: tuple[float, RenderRequest] | None = None

    @property
    def full(self) -> bool:
        return self.limit_note is not None

    def sample(self, req: RenderRequest, dt: float) -> int:
        """Adds the video frames up to now: the GUI advanced ``dt`` seconds and now shows ``req``. The first call is
        frame 0 at time 0. Returns the number of frames added."""
        if self.full:
            return 0
        req = req.replace(stamp=0)
        if self._prev is None:
            self._prev = (0.0, req)
            return self._add(req)
        t0, a = self._prev
        t1 = t0 + max(float(dt), 0.0)
        added = 0
        while not self.full:
            tk = len(self.states) / self.fps
            if tk > t1 + _EPS:
                break
            if t1 - t0 <= _EPS or a == req:
                s = req if tk >= t1 - _EPS else a
            else:
                s = interpolate_states(a, req, min(max((tk - t0) / (t1 - t0), 0.0), 1.0))
            added += self._add(s)
        self.time_sec = t1
        self._prev = (t1, req)
        return added

    def _add(self, s: RenderRequest) -> int:
        if self.states and s == self.states[-1]:
            s = self.states[-1]  # share the object: an unchanged view costs no memory (and pickles once)
        size = state_json_bytes(s)
        if len(self.states) >= MAX_RECORD_FRAMES or len(self.states) / self.fps >= MAX_RECORD_SEC:
            self.limit_note = (
                f'Recording stopped at the limit of {MAX_RECORD_FRAMES} frames / {MAX_RECORD_SEC / 60:.0f} min'
            )
            return 0
        if self.num_bytes + size > MAX_RECORD_BYTES:
            self.limit_note = (
                f'Recording stopped at {len(self.states)} frames: the states fill the {MAX_RECORD_BYTES >> 20} MiB a '
                f'timeline may hold (an explicit latent costs ~{size >> 10} KiB per frame)'
            )
            return 0
        self.states.append(s)
        self.num_bytes += size
        return 1


@dataclasses.dataclass
class _Job:
    job_id: int
    output: str
    num_frames: int
    state: str = 'queued'
    done: int = 0


class RecordWidget(Widget):
    """View / fps / size / format / output, Start-Stop recording, render progress with Cancel, the result's path.

    State: ``video_view`` ('image' | 'fft' | 'image+fft'), ``fps`` (1..120), ``native_size`` (True: the view's own
    size), ``height_px`` (16..4320: the frame height when not native; the width keeps the aspect), ``format``
    ('mp4' | 'png'), ``out_dir`` ('' = the Capture pane's directory), ``name`` ('' = numbered ``NNNNN-record``).
    Outcome (not saved): ``recording``, ``status``, ``last_result`` (the finished job's result dict).
    """

    TITLE = 'Record'
    KEY = 'record'
    STATE_KEYS = ('video_view', 'fps', 'native_size', 'height_px', 'format', 'out_dir', 'name')
    DEFAULT_OPEN = False

    def __init__(self, viz=None) -> None:
        super().__init__(viz)
        self.video_view = 'image'
        self.fps = 30
        self.native_size = True
        self.height_px = 512
        self.format = 'mp4'
        self.out_dir = ''
        self.name = ''
        self.recorder: Recorder | None = None
        self.status = ''
        self.last_result: dict | None = None
        self.last_error: str | None = None
        self.jobs: dict[int, _Job] = {}
        self.retry: dict | None = None  # job arguments of the last failed render (nothing recorded is lost)
        self.button_rects: dict[str, list[float]] = {}  # screen rects of the buttons (tests drive them with xdotool)
        self._dt = 0.0
        self._first_widgets: dict | None = None
        self._reserved: dict[str, int] = {}  # out dir -> highest number handed out to a job not finished yet
        self._params: dict[int, dict] = {}  # job id -> its arguments (kept for Retry until it finishes)

    # ---- state ------------------------------------------------------------------------------------------------
    def validate(self) -> None:
        if self.video_view not in VIEWS:
            self.notify(f'Record view must be one of {", ".join(VIEWS)}, got {self.video_view!r}; using image')
            self.video_view = 'image'
        if self.format not in FORMATS:
            self.notify(f'Record format must be mp4 or png, got {self.format!r}; using mp4')
            self.format = 'mp4'
        self.fps = self._clamp_int('fps', self.fps, *FPS_RANGE, 30)
        self.height_px = self._clamp_int('height', self.height_px, *HEIGHT_RANGE_PX, 512)
        self.native_size = bool(self.native_size)
        self.out_dir = self.out_dir if isinstance(self.out_dir, str) else ''
        self.name = self.name if isinstance(self.name, str) else ''

    def _clamp_int(self, label: str, value: Any, lo: int, hi: int, default: int) -> int:
        try:
            v = float(value)
            if v != v:
                raise ValueError('NaN')
        except (TypeError, ValueError, OverflowError):
            self.notify(f'Record {label} {value!r} is not a number; using {default}')
            return default
        out = int(min(max(round(v) if abs(v) != float('inf') else v, lo), hi))
        if out != value:
            self.notify(f'Record {label} {value!r} is outside {lo}..{hi}; clamped to {out}')
        return out

    # ---- recording --------------------------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self.recorder is not None

    @property
    def job_id(self) -> int | None:
        """The oldest unfinished render job (``Visualizer.jobs_running`` reads it), or None."""
        return next(iter(self.jobs), None)

    def start(self) -> bool:
        """Starts recording (the next submitted request is frame 0). Returns False when already recording."""
        if self.recording:
            return False
        self.validate()
        self.recorder = Recorder(self.fps)
        self._first_widgets = None
        self.status = 'Recording...'
        return True

    def stop(self) -> int | None:
        """Stops recording and starts rendering what was recorded. Returns the job id (None: nothing recorded, or
        the renderer runs no jobs; ``status`` says which)."""
        rec, self.recorder = self.recorder, None
        if rec is None:
            return None
        if not rec.states:
            self.status = 'Nothing recorded (no frame was drawn while recording)'
            return None
        note = f' ({rec.limit_note})' if rec.limit_note else ''
        logger.info('recorded %d frames (%.2f s)%s', len(rec.states), rec.time_sec, note)
        return self._start_job(rec.states, fps=rec.fps, view=self.video_view, name=None, widgets=self._first_widgets)

    def sample(self, req: RenderRequest) -> None:
        """The visualizer's hook, right before it submits ``req`` each frame: records it while recording."""
        rec = self.recorder
        if rec is None:
            return
        if self.viz is not None and self.viz.window is not None:
            self.viz.window.idle.mark_active()  # keep drawing at the FPS limit: the clock must run every frame
        if not rec.states and self.viz is not None:
            self._first_widgets = self.viz.get_session()['widgets']
        rec.sample(req, self._dt)
        self._draw_indicator(rec)
        if rec.full:
            self.notify(rec.limit_note or 'Recording limit reached')
            self.stop()

    # ---- rendering --------------------------------------------------------------------------------------------
    def render_states(
        self,
        states: list[RenderRequest],
        *,
        fps: float,
        view: str | None = None,
        name: str | None = None,
        widgets: dict | None = None,
    ) -> int | None:
        """Renders ``states`` (one per frame) to a video with this pane's output settings (format, size, directory),
        like a recording: the same job, progress and Cancel here, the same files. For other widgets (keyframe editor,
        checkpoint scrubber).

        Args:
            states: the frames' requests (at least one).
            fps: frames per second (clamped into 1..120 with a note).
            view: 'image' | 'fft' | 'image+fft' (None: this pane's view).
            name: output name without suffix, e.g. 'keyframes' (None: numbered ``NNNNN-record``); an existing name
                gets the next free number prepended (``NNNNN-keyframes``).
            widgets: the GUI widget state of the first frame (``Visualizer.get_session()['widgets']`` form), stored in
                the timeline so that dropping the video restores it (None: the video re-renders headless but a drop
                says it holds no GUI state).

        Returns:
            The job id, or None when nothing started (no states, no renderer jobs; ``status`` says why).
        """
        fps_c = self._clamp_int('fps', fps, *FPS_RANGE, 30)
        if view is not None and view not in VIEWS:
            self.notify(f'Record view must be one of {", ".join(VIEWS)}, got {view!r}; using {self.video_view}')
            view = None
        return self._start_job(list(states), fps=fps_c, view=view or self.video_view, name=name, widgets=widgets)

    def output_path(self, name: str | None = None) -> pathlib.Path:
        """Where the next video goes: ``<dir>/NNNNN-<name or 'record'>.mp4`` (a folder for PNG sequences), numbered
        like captures; a fixed ``name`` (this pane's, or the argument) is used as is unless it exists."""
        self.validate()
        d = pathlib.Path(self.out_dir or (self.viz.capture.capture_dir if self.viz is not None else 'captures'))
        suffix = '.mp4' if self.format == 'mp4' else ''
        fixed = (name if name is not None else self.name).strip()
        if fixed:
            if not _NAME_OK.match(fixed) or fixed in ('.', '..'):
                self.notify(f'Record name {fixed!r} must be a plain file name (no folders); using a numbered name')
            else:
                stem = fixed[: -len(suffix)] if suffix and fixed.lower().endswith(suffix) else fixed
                p = d / f'{stem}{suffix}'
                if not p.exists() and not p.with_suffix('.json').exists():
                    return p
                return d / f'{self._next_index(d):05d}-{stem}{suffix}'
        return d / f'{self._next_index(d):05d}-record{suffix}'

    def _next_index(self, d: pathlib.Path) -> int:
        idx = max(next_capture_index(d), self._reserved.get(str(d), -1) + 1)
        self._reserved[str(d)] = idx
        return idx

    def _start_job(self, states, *, fps: float, view: str, name: str | None, widgets: dict | None) -> int | None:
        if not states:
            self.status = 'Nothing to render: no states'
            return None
        if self.viz is None:
            self.status = 'No renderer'
            return None
        out = self.output_path(name)
        net = self.view_net_dict()
        params = dict(
            states=list(states), output=str(out), fps=float(fps), view=view,
            height_px=None if self.native_size else int(self.height_px), widgets=widgets, network=net,
        )  # fmt: skip
        return self._launch(params)

    def view_net_dict(self) -> dict | None:
        net = self.net
        return dataclasses.asdict(net) if net is not None else None

    def _launch(self, params: dict) -> int | None:
        job_id = self.viz.start_job('render_video', params) if self.viz is not None else None
        if job_id is None:  # e.g. a remote render server: keep the states on disk for gen_video.py --timeline
            self.retry = params
            saved = self.save_states()
            self.status = 'This renderer cannot render videos' + (
                f'; the states are in {saved}: gen_video.py --timeline {saved} renders them' if saved else ''
            )
            return None
        self.jobs[job_id] = _Job(job_id, params['output'], len(params['states']))
        self._params[job_id] = params
        self.last_error = None
        self.status = f'Rendering {len(params["states"])} frames to {params["output"]}'
        return job_id

    def save_states(self) -> str | None:
        """Writes the last failed (or unstartable) render's timeline JSON where its video would have gone
        (``engine.recording.timeline_json_path``), so ``gen_video.py --timeline`` can render it. Returns the path, or
        None (nothing to save, or the write failed: ``status`` says why)."""
        from engine.recording import timeline_json_path
        from engine.states import make_timeline, write_json

        params = self.retry
        if params is None:
            return None
        try:
            doc = make_timeline(
                list(params['states']), fps=params['fps'], view=params['view'], network=params['network']
            )
            doc['height_px'] = params['height_px']
            if params.get('widgets'):
                doc['widgets'] = params['widgets']
            return str(write_json(timeline_json_path(params['output']), doc))
        except (OSError, ValueError) as e:
            self.status = f'Cannot save the states: {e}'
            logger.error('%s', self.status)
            return None

    def retry_render(self) -> int | None:
        """Starts the last failed render again (same states and output settings)."""
        params, self.retry = self.retry, None
        return self._launch(params) if params is not None else None

    def cancel(self, job_id: int | None = None) -> None:
        """Cancels a render job (default: the running one); its files are not written."""
        job_id = self.job_id if job_id is None else job_id
        if job_id is not None and job_id in self.jobs and self.viz is not None:
            self.viz.cancel_job(job_id)

    def on_job_update(self, u) -> None:
        job = self.jobs.get(u.job_id)
        if job is None:
            return
        job.state, job.done = u.state, int(u.done)
        if not u.is_final:
            return
        del self.jobs[u.job_id]
        params = self._params.pop(u.job_id, None)
        if not self.jobs:
            self._reserved.clear()
        if u.state == 'done':
            r = u.result or {}
            self.last_result = r
            note = '' if r.get('embedded') or self.format == 'png' else f' (state not embedded: {r.get("embed_note")})'
            self.status = (
                f'Wrote {r.get("frames")} frames ({r.get("width")}x{r.get("height")}, {r.get("fps", 0):g} fps) in '
                f'{u.elapsed_sec:.0f} s: {r.get("output")} + {pathlib.Path(str(r.get("json"))).name}{note}'
            )
        elif u.state == 'cancelled':
            self.status = f'Cancelled: nothing written ({job.output})'
        else:
            self.last_error = u.error or 'render failed'
            self.retry = params
            self.status = f'Render failed: {self.last_error} -- the recording is kept: Retry renders it again'
            logger.error('%s', self.status)

    # ---- per frame --------------------------------------------------------------------------------------------
    def update_request(self, args: dict[str, Any], dt: float) -> None:
        self._dt = float(dt)

    def dump(self) -> dict:
        """Widget outcome for the script hook's dump_state."""
        rec = self.recorder
        return {
            'recording': self.recording,
            'num_frames': len(rec.states) if rec is not None else 0,
            'time_sec': rec.time_sec if rec is not None else 0.0,
            'jobs': {str(k): dataclasses.asdict(v) for k, v in self.jobs.items()},
            'status': self.status,
            'last_result': self.last_result,
            'last_error': self.last_error,
            'button_rects': self.button_rects,
        }

    def _draw_indicator(self, rec: Recorder) -> None:
        """Red dot, elapsed time and frame count in the window's top right corner while recording."""
        if imgui.get_current_context() is None:
            return
        fs = self.font_size
        dl = imgui.get_foreground_draw_list()
        w = imgui.get_io().display_size.x
        text = f'REC {_clock(rec.time_sec)}  {len(rec.states)} frames'
        tw = imgui.calc_text_size(text).x
        x0, y0 = w - tw - fs * 2.6, fs * 0.5
        dl.add_rect_filled(imgui.ImVec2(x0 - fs * 0.4, y0 - fs * 0.3), imgui.ImVec2(w - fs * 0.4, y0 + fs * 1.3),
                           imgui.get_color_u32(imgui.ImVec4(0, 0, 0, 0.6)), fs * 0.3)  # fmt: skip
        dl.add_circle_filled(imgui.ImVec2(x0 + fs * 0.5, y0 + fs * 0.5), fs * 0.45,
                             imgui.get_color_u32(imgui.ImVec4(0.9, 0.1, 0.1, 1)))  # fmt: skip
        dl.add_text(imgui.ImVec2(x0 + fs * 1.3, y0), imgui.get_color_u32(imgui.ImVec4(1, 1, 1, 1)), text)

    def _rect(self, key: str) -> None:
        a, b = imgui.get_item_rect_min(), imgui.get_item_rect_max()
        self.button_rects[key] = [float(a.x), float(a.y), float(b.x), float(b.y)]

    def draw(self) -> None:
        fs = self.font_size
        rec = self.recorder
        if rec is None:
            if imgui.button('Start recording', imgui.ImVec2(fs * 9, 0)):
                self.start()
            self._rect('start')
        else:
            imgui.push_style_color(imgui.Col_.button, imgui.ImVec4(0.75, 0.1, 0.1, 1))
            if imgui.button('Stop', imgui.ImVec2(fs * 9, 0)):
                self.stop()
            imgui.pop_style_color()
            self._rect('stop')
        imgui.same_line()
        if rec is not None:
            imgui.text_colored(imgui.ImVec4(1, 0.25, 0.25, 1), f'REC {_clock(rec.time_sec)}  {len(rec.states)} frames')
        else:
            imgui.text_disabled(f'up to {MAX_RECORD_SEC / 60:.0f} min / {MAX_RECORD_FRAMES} frames')
        self._draw_settings(locked=rec is not None)
        self._draw_jobs()

    def _draw_settings(self, locked: bool) -> None:
        fs = self.font_size
        imgui.begin_disabled(locked)
        imgui.set_next_item_width(fs * 8)
        if imgui.begin_combo('View##rec', VIEW_LABELS[self.video_view]):
            for v in VIEWS:
                if imgui.selectable(VIEW_LABELS[v], v == self.video_view)[0]:
                    self.video_view = v
            imgui.end_combo()
        imgui.same_line()
        imgui.set_next_item_width(fs * 5.5)
        changed, fps = imgui.input_int('fps##rec', int(min(max(self.fps, -(2**31) + 1), 2**31 - 1)), 1, 10)
        if changed:
            self.fps = self._clamp_int('fps', fps, *FPS_RANGE, 30)
        self.native_size = edited(self.native_size, imgui.checkbox('Native size', self.native_size))
        if not self.native_size:
            imgui.same_line()
            imgui.set_next_item_width(fs * 6)
            changed, h = imgui.input_int(
                'height px##rec', int(min(max(self.height_px, -(2**31) + 1), 2**31 - 1)), 16, 128
            )
            if changed:
                self.height_px = self._clamp_int('height', h, *HEIGHT_RANGE_PX, 512)
        imgui.set_next_item_width(fs * 8)
        if imgui.begin_combo('Format##rec', FORMAT_LABELS[self.format]):
            for f in FORMATS:
                if imgui.selectable(FORMAT_LABELS[f], f == self.format)[0]:
                    self.format = f
            imgui.end_combo()
        imgui.set_next_item_width(-fs * 3)
        self.out_dir = edited(
            self.out_dir, imgui.input_text_with_hint('Dir##rec', 'the capture directory', self.out_dir)
        )
        imgui.set_next_item_width(-fs * 3)
        self.name = edited(self.name, imgui.input_text_with_hint('Name##rec', 'NNNNN-record (numbered)', self.name))
        imgui.end_disabled()

    def _draw_jobs(self) -> None:
        fs = self.font_size
        job = self.jobs.get(self.job_id) if self.job_id is not None else None
        if job is not None:
            frac = job.done / job.num_frames if job.num_frames else 0.0
            label = f'{job.done}/{job.num_frames} frames' + (
                f' (+{len(self.jobs) - 1} queued)' if len(self.jobs) > 1 else ''
            )
            imgui.progress_bar(frac, imgui.ImVec2(-fs * 5.5, 0), label)
            imgui.same_line()
            if imgui.button('Cancel##rec', imgui.ImVec2(fs * 5, 0)):
                self.cancel()
            self._rect('cancel')
        if self.retry is not None and job is None:
            if imgui.button('Retry render'):
                self.retry_render()
            imgui.same_line()
            if imgui.button('Save states JSON'):
                saved = self.save_states()
                if saved:
                    self.status = f'Saved {saved}: gen_video.py --timeline {saved} renders it'
        if self.status:
            imgui.push_text_wrap_pos(0.0)
            if self.last_error:
                imgui.text_colored(imgui.ImVec4(1, 0.4, 0.4, 1), self.status)
            else:
                imgui.text(self.status)
            imgui.pop_text_wrap_pos()


def _clock(sec: float) -> str:
    m, s = divmod(max(float(sec), 0.0), 60)
    return f'{int(m)}:{s:04.1f}'
