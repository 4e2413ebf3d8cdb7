"""Recorded videos: render a list of states (one per frame) and write an mp4 or a PNG sequence, atomically.

This is the one render path of every state video: the GUI's Record pane (and the keyframe editor / checkpoint
scrubber through it) runs :func:`render_video_job` as the render process's ``'render_video'`` job
(``engine.jobs``), and ``gen_video.py --timeline`` drives the same generator headless
(:func:`run_video_job`), so a recorded video is reproduced frame for frame without a window.

Per frame: ``Renderer.render(state)`` (the GUI's renderer), then the view (``engine.states.compose_view``:
'image' = what the request shows, the final image or the selected layer with its channel / normalise / brightness
settings; 'fft'; 'image+fft'), then :func:`fit_frame` to the video's size. The size is fixed by the first frame:
native, or scaled to ``height_px`` (the width keeps the aspect); an mp4's width and height are made even (H.264
with yuv420p needs it): a native odd size is padded by one black row/column, a chosen size is rounded. Later frames
of another size (a layer switch) are resized to it. Resampling: an exact integer upscale (a small layer shown
larger) is nearest-neighbour, so its pixels stay sharp and exact; anything else is Lanczos (antialiased).

Output (``output`` as in ``gen_video.py``: a video ``.mp4``/``.mov``/``.mkv``, a directory, or a ``%04d.png``
pattern) with the timeline JSON beside it (:func:`timeline_json_path`). Everything is written to temporary names
in the target folder and renamed when the last frame is done: a cancelled or failed job leaves neither a
half-written video nor temporary files. An mp4/mov also carries the timeline inside (``engine.mp4_state``).
"""

from __future__ import annotations

import fractions
import logging
import os
import pathlib
import shutil
import tempfile
import time
from collections.abc import Callable, Generator, Iterable
from typing import Any

import numpy as np

from engine.atomic_files import default_mode
from engine.jobs import JobError, Progress
from engine.protocol import RenderRequest
from engine.states import TIMELINE_VIEWS, compose_view, make_timeline, request_from_dict, write_json

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = ('.mp4', '.mov', '.mkv')
EMBED_SUFFIXES = ('.mp4', '.mov')  # containers whose state engine.mp4_state reads back
HEIGHT_RANGE_PX = (16, 4320)
FPS_RANGE = (1.0, 240.0)
CRF = 15  # libx264 constant rate factor: visually lossless for these images (0 = lossless, 23 = x264's default)
FFMPEG_CLOSE_TIMEOUT_SEC = 60.0


# ----------------------------------------------------------------------------
# Output names.


def _check_parent(path: str) -> None:
    """Raises ValueError when a folder on the way to ``path`` is an existing file (checked before any work)."""
    parent = pathlib.Path(path).parent
    for folder in [parent, *parent.parents]:
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(f'output {path!r} cannot be written: {str(folder)!r} is a file, not a directory')
            return


def output_kind(output: str) -> tuple[str, str]:
    """('video', path) or ('png', a pattern with one integer field) for ``output``.

    Raises:
        ValueError: an unsupported name (the message lists the accepted forms) or a parent that is a file.
    """
    output = os.fspath(output)
    if '%' in output:
        try:
            output % 0
        except (TypeError, ValueError):
            raise ValueError(f"output must contain one integer field like 'frames/%04d.png', got {output!r}") from None
        if not output.lower().endswith('.png'):
            raise ValueError(f'output pattern must end with .png, got {output!r}')
        _check_parent(output)
        return 'png', output
    suffix = pathlib.Path(output).suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        if os.path.isdir(output):
            raise ValueError(f'output {output!r} is an existing directory, not a video file; pass a file name')
        _check_parent(output)
        return 'video', output
    if suffix == '' or os.path.isdir(output):
        if os.path.exists(output) and not os.path.isdir(output):
            raise ValueError(
                f'output {output!r} is an existing file, not a directory for PNG frames; pass a directory, a video '
                f'name ({", ".join(VIDEO_SUFFIXES)}) or a %04d.png pattern'
            )
        _check_parent(os.path.join(output, 'x'))
        return 'png', os.path.join(output, '%04d.png')
    raise ValueError(
        f'output must be a video ({", ".join(VIDEO_SUFFIXES)}), a directory or a %04d.png pattern, got {output!r}'
    )


def timeline_json_path(output: str) -> pathlib.Path:
    """Where the states JSON goes next to ``output``: ``out.mp4`` -> ``out.json``; a PNG sequence (directory or
    ``%04d.png`` pattern) -> ``states.json`` in its folder."""
    kind, target = output_kind(output)
    if kind == 'video':
        return pathlib.Path(target).with_suffix('.json')
    return pathlib.Path(os.path.dirname(target) or '.') / 'states.json'


# ----------------------------------------------------------------------------
# Frames.


def _even(n: int) -> int:
    return max(2, n + (n % 2))


def frame_size(shape_hw: tuple[int, int], height_px: int | None, *, even: bool) -> tuple[int, int]:
    """(height, width) of a video whose first frame is ``shape_hw``: native, or ``height_px`` high with the width
    keeping the aspect (rounded); both made even when ``even`` (H.264 yuv420p)."""
    h, w = int(shape_hw[0]), int(shape_hw[1])
    if height_px is not None:
        h, w = int(height_px), max(1, round(w * int(height_px) / h))
    return (_even(h), _even(w)) if even else (h, w)


def fit_frame(frame: np.ndarray, size_hw: tuple[int, int], *, pad_ok: bool) -> np.ndarray:
    """``frame`` (uint8 [H, W, 3]) at ``size_hw``: unchanged when it fits, padded with black at the bottom/right
    when ``pad_ok`` and it is at most one pixel short (an odd native size made even), else resized (an exact integer
    upscale nearest-neighbour, anything else Lanczos)."""
    import PIL.Image

    h, w = frame.shape[:2]
    th, tw = size_hw
    if (h, w) == (th, tw):
        return frame
    if pad_ok and 0 <= th - h <= 1 and 0 <= tw - w <= 1:
        return np.pad(frame, [(0, th - h), (0, tw - w), (0, 0)])
    integer_up = th % h == 0 and tw % w == 0 and th // h == tw // w and th > h
    method = PIL.Image.Resampling.NEAREST if integer_up else PIL.Image.Resampling.LANCZOS
    return np.asarray(PIL.Image.fromarray(frame).resize((tw, th), method))


def video_state(state: RenderRequest, view: str) -> RenderRequest:
    """The state as a video frame renders it: the FFT computed when ``view`` shows it; the live-only extras (the
    lab's readouts, returning ws) off, since a frame does not show them."""
    return state.replace(
        fft_show=bool(state.fft_show or view != 'image'), lab_spectrum=False, lab_eq=False, return_ws=False, stamp=0
    )


def render_frame(renderer: Any, state: RenderRequest, view: str, index: int = 0) -> np.ndarray:
    """One frame: ``renderer.render(state)`` composed to ``view``, uint8 [H, W, 3].

    Raises:
        engine.jobs.JobError: the state does not render (the message names the frame and the reason).
    """
    res = renderer.render(state)
    if res.error or res.image is None:
        raise JobError(f'frame {index}: render failed: {res.error or "no image"}')
    try:
        frame = compose_view(res.image, res.fft, view)
    except ValueError as e:
        raise JobError(f'frame {index}: {e}') from e
    return np.ascontiguousarray(frame[..., :3])


# ----------------------------------------------------------------------------
# Sinks: temporary files renamed at the end.


class _PngSink:
    """PNG frames into a fresh temporary folder beside the target; ``commit`` moves them in."""

    def __init__(self, pattern: str, json_path: pathlib.Path):
        self.pattern = pattern
        self.folder = pathlib.Path(os.path.dirname(pattern) or '.')
        self.json_path = json_path
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = pathlib.Path(tempfile.mkdtemp(dir=self.folder.parent, prefix=f'.{self.folder.name}.', suffix='.tmp'))
        self.names: list[str] = []

    def write(self, frame: np.ndarray) -> None:
        import PIL.Image

        name = os.path.basename(self.pattern % len(self.names))
        PIL.Image.fromarray(frame, 'RGB').save(self.tmp / name, compress_level=4)  # plain open(): umask modes
        self.names.append(name)

    def commit(self, doc: dict) -> dict:
        write_json(self.tmp / self.json_path.name, doc)
        os.chmod(self.tmp, default_mode(is_dir=True))
        if not self.folder.exists():
            os.replace(self.tmp, self.folder)  # one rename: the whole sequence appears at once
        else:  # an existing folder (a pattern into it): move the files in, the JSON last
            for name in [*self.names, self.json_path.name]:
                os.replace(self.tmp / name, self.folder / name)
            self.tmp.rmdir()
        return {'embedded': False}

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class _VideoSink:
    """H.264 yuv420p through imageio-ffmpeg into a temporary file; ``commit`` embeds the state (mp4/mov) and renames
    the video and its JSON into place."""

    def __init__(self, path: str, json_path: pathlib.Path, size_hw: tuple[int, int], fps: float):
        import imageio_ffmpeg

        self.path = pathlib.Path(path)
        self.json_path = json_path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f'.{self.path.name}.', suffix=self.path.suffix)
        os.close(fd)
        self.tmp = pathlib.Path(tmp)
        self.extra: list[pathlib.Path] = []
        self._gen: Any = None
        self.count = 0
        try:
            self._gen = imageio_ffmpeg.write_frames(
                str(self.tmp), (size_hw[1], size_hw[0]), fps=fractions.Fraction(fps).limit_denominator(1001),
                codec='libx264', pix_fmt_out='yuv420p', macro_block_size=1, ffmpeg_log_level='error',
                ffmpeg_timeout=FFMPEG_CLOSE_TIMEOUT_SEC, output_params=['-crf', str(CRF), '-preset', 'medium'],
            )  # fmt: skip
            self._gen.send(None)  # starts ffmpeg
        except BaseException as e:
            self.abort()
            if isinstance(e, Exception):
                raise JobError(f'cannot start ffmpeg (imageio-ffmpeg) for {self.path.name}: {e}') from e
            raise

    def write(self, frame: np.ndarray) -> None:
        assert self._gen is not None, 'write() after commit() or abort()'
        try:
            self._gen.send(np.ascontiguousarray(frame).tobytes())
        except OSError as e:
            raise JobError(f'ffmpeg stopped while writing {self.path.name}: {str(e).splitlines()[0]}') from e
        self.count += 1

    def _close_encoder(self) -> None:
        if self._gen is not None:
            gen, self._gen = self._gen, None
            gen.close()

    def commit(self, doc: dict) -> dict:
        from engine import mp4_state

        self._close_encoder()
        if self.tmp.stat().st_size == 0:
            raise JobError(f'ffmpeg wrote no video for {self.path.name}; see the log')
        embedded, note = False, ''
        final = self.tmp
        if self.path.suffix.lower() in EMBED_SUFFIXES:
            fd, tagged = tempfile.mkstemp(dir=self.path.parent, prefix=f'.{self.path.name}.', suffix=self.path.suffix)
            os.close(fd)
            self.extra.append(pathlib.Path(tagged))
            try:
                mp4_state.embed_state(self.tmp, tagged, doc)
                final, embedded = pathlib.Path(tagged), True
            except ValueError as e:  # too large, or ffmpeg refused: the video and its JSON still come out
                note = str(e)
                logger.warning('%s: the state is not embedded: %s', self.path.name, e)
        fd, js = tempfile.mkstemp(dir=self.json_path.parent, prefix=f'.{self.json_path.name}.', suffix='.tmp')
        os.close(fd)
        self.extra.append(pathlib.Path(js))
        write_json(js, doc)
        os.chmod(final, default_mode())
        os.replace(final, self.path)
        os.replace(js, self.json_path)
        self.abort()  # removes what is left (the untagged encode)
        return {'embedded': embedded, 'embed_note': note}

    def abort(self) -> None:
        try:
            self._close_encoder()
        except Exception as e:  # a failing ffmpeg on the way out must not hide the first error
            logger.warning('closing ffmpeg: %s', e)
        for p in [self.tmp, *self.extra]:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                logger.warning('cannot remove %s: %s', p, e)


# ----------------------------------------------------------------------------
# The job.


def check_video_args(num_states: int, fps: Any, view: Any, height_px: Any) -> tuple[float, str, int | None]:
    """Validated (fps, view, height_px).

    Raises:
        engine.jobs.JobError: no states, fps outside :data:`FPS_RANGE`, unknown view, height outside
            :data:`HEIGHT_RANGE_PX`.
    """
    if num_states < 1:
        raise JobError('render_video: give at least one state to render')
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
        raise JobError(f'render_video: fps must be a number in {FPS_RANGE[0]:g}..{FPS_RANGE[1]:g}, got {fps!r}')
    if view not in TIMELINE_VIEWS:
        raise JobError(f'render_video: view must be one of {TIMELINE_VIEWS}, got {view!r}')
    if height_px is not None:
        lo, hi = HEIGHT_RANGE_PX
        if isinstance(height_px, bool) or not isinstance(height_px, int) or not lo <= height_px <= hi:
            raise JobError(f'render_video: height_px must be None (native) or an int in {lo}..{hi}, got {height_px!r}')
    return float(fps), str(view), height_px


def render_video_job(
    ctx: Any,
    *,
    request: Any = None,
    states: Iterable[RenderRequest | dict],
    output: str,
    fps: float = 30.0,
    view: str = 'image',
    height_px: int | None = None,
    widgets: dict | None = None,
    network: dict | None = None,
) -> Generator[Progress, None, dict]:
    """Renders ``states`` one per frame and writes the video / PNG sequence with its timeline JSON (job kind
    ``'render_video'``; see the module docstring).

    Args:
        ctx: the renderer (``engine.renderer.Renderer``; anything with ``render(RenderRequest) -> RenderResult``).
        request: unused (jobs receive the live request; every state names its own network).
        states: RenderRequests or their ``to_dict()`` dicts, one per frame.
        output: a video file (.mp4/.mov/.mkv), a directory or a ``%04d.png`` pattern.
        fps: frames per second, 1..240.
        view: 'image', 'fft' or 'image+fft'.
        height_px: None (native) or the frame height in pixels, 16..4320.
        widgets: GUI widget state of the first frame (stored in the JSON, so dropping the result restores it).
        network: facts about the network (stored in the JSON).

    Yields:
        engine.jobs.Progress after each frame (done = frames written, total = len(states)).

    Returns:
        {'output', 'json', 'frames', 'width', 'height', 'fps', 'view', 'embedded', 'embed_note', 'render_sec'}.

    Raises:
        engine.jobs.JobError: bad arguments, a state that does not render, ffmpeg failing; nothing is left behind.
    """
    try:
        reqs = [s if isinstance(s, RenderRequest) else request_from_dict(s, f'state {i}') for i, s in enumerate(states)]
        fps, view, height_px = check_video_args(len(reqs), fps, view, height_px)
        kind, target = output_kind(output)
        json_path = timeline_json_path(output)
    except ValueError as e:
        raise JobError(str(e)) from e
    reqs = [video_state(s, view) for s in reqs]
    doc = make_timeline(reqs, fps=fps, view=view, network=network)
    doc['height_px'] = height_px
    if widgets:
        doc['widgets'] = widgets
    t0 = time.monotonic()
    sink: _PngSink | _VideoSink | None = None
    size: tuple[int, int] | None = None
    try:
        for i, req in enumerate(reqs):
            frame = render_frame(ctx, req, view, i)
            if size is None:
                size = frame_size(frame.shape[:2], height_px, even=kind == 'video')
                sink = _VideoSink(target, json_path, size, fps) if kind == 'video' else _PngSink(target, json_path)
            assert sink is not None
            sink.write(fit_frame(frame, size, pad_ok=height_px is None))
            yield Progress(i + 1, len(reqs), f'frame {i + 1}/{len(reqs)}')
        assert sink is not None and size is not None
        outcome = sink.commit(doc)
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    shown = target if kind == 'video' else os.path.dirname(target) or '.'
    return {
        'output': shown, 'json': str(json_path), 'frames': len(reqs), 'width': size[1], 'height': size[0],
        'fps': fps, 'view': view, 'embedded': outcome.get('embedded', False), 'embed_note': outcome.get('embed_note', ''),
        'render_sec': time.monotonic() - t0,
    }  # fmt: skip


def run_video_job(
    renderer: Any,
    states: list[RenderRequest],
    output: str,
    *,
    on_progress: Callable[[Progress], Any] | None = None,
    **params: Any,
) -> dict:
    """Runs :func:`render_video_job` to the end in this process (``gen_video.py --timeline``, tests, benchmarks).

    Returns:
        The job's result dict.

    Raises:
        ValueError: what the job raised as ``JobError`` (bad arguments, a frame that does not render).
    """
    gen = render_video_job(renderer, states=states, output=output, **params)
    try:
        while True:
            p = next(gen)
            if on_progress is not None:
                on_progress(p)
    except StopIteration as stop:
        return stop.value
    except JobError as e:
        raise ValueError(str(e)) from e
    finally:
        gen.close()
