"""Projection widget: find the latent of your own image (drop it on the window, or give its path), watch the
reconstruction converge, then explore around it.

The optimisation is `engine.projector` (StyleGAN2 paper, appendix D) running as the render process's 'project' job
(`engine.jobs`): the window stays live, the pane shows target | reconstruction every few steps, Cancel stops it at
the next step, and loading another network cancels it. When it finishes, the result becomes the Latent pane's
loaded latent (so truncation, stylemix, layers, FFT and equivariance all work on it) and can be saved with Save W
like any latent. This module never imports torch.
"""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Any

import numpy as np
from imgui_bundle import imgui

from viz.job_client import JobClient, job_id_property
from viz.widget import Widget, edited

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.webp', '.bmp', '.gif', '.tif', '.tiff')
SPACES = ('w', 'w+')  # engine.projector.SPACES (this module stays torch-free)
LOSSES = ('auto', 'builtin', 'vgg16')
STEPS_RANGE = (1, 100_000)
PREVIEW_RANGE = (1, 1000)
MAX_TARGET_BYTES = 64 * 1024 * 1024  # engine.projector.MAX_TARGET_BYTES


def is_image_path(path: str) -> bool:
    """Whether a dropped file is an image to project (by its suffix)."""
    return pathlib.Path(path).suffix.lower() in IMAGE_SUFFIXES


class ProjectionWidget(Widget):
    """Target image, W / W+, steps, seed, loss (+ VGG16 file), Project / Cancel, progress and preview.

    State: ``target_path``, ``space`` ('w' | 'w+'), ``num_steps``, ``seed``, ``loss`` ('auto' | 'builtin' |
    'vgg16'), ``vgg16_path`` ('' = `$SG3VIZ_VGG16` or the cache's vgg16.pt), ``trust_vgg16``, ``preview_every``.
    Outcome (not saved): ``status``, ``progress`` (done, total), ``preview`` ([H, 2W, 3] uint8 target |
    reconstruction), ``last_result`` (the job's result dict).
    """

    TITLE = 'Projection'
    KEY = 'projection'
    STATE_KEYS = ('target_path', 'space', 'num_steps', 'seed', 'loss', 'vgg16_path', 'trust_vgg16', 'preview_every')
    DEFAULT_OPEN = False

    def __init__(self, viz=None) -> None:
        super().__init__(viz)
        self.target_path = ''
        self.space = 'w'
        self.num_steps = 300
        self.seed = 303
        self.loss = 'auto'
        self.vgg16_path = ''
        self.trust_vgg16 = False
        self.preview_every = 10
        self.job = JobClient(self)  # The 'project' job.
        self.status = ''
        self.preview: np.ndarray | None = None
        self.last_result: dict | None = None
        self._job_pkl: Any = None
        self._target_name = ''
        self._tex = None
        self._tex_dirty = False
        self._pending_start: str | None = None

    job_id = job_id_property()

    @property
    def progress(self) -> tuple[int, int]:
        """(steps done, steps in all) of the current / last projection."""
        return self.job.done, self.job.total

    # ---- state ------------------------------------------------------------------------------------------------
    def validate(self) -> None:
        self.space = self.space if self.space in SPACES else 'w'
        self.loss = self.loss if self.loss in LOSSES else 'auto'
        self.num_steps = _clamp_int(self.num_steps, *STEPS_RANGE, 300)
        self.seed = _clamp_int(self.seed, 0, 2**32 - 1, 303)
        self.preview_every = _clamp_int(self.preview_every, *PREVIEW_RANGE, 10)
        self.target_path = self.target_path if isinstance(self.target_path, str) else ''
        self.vgg16_path = self.vgg16_path if isinstance(self.vgg16_path, str) else ''
        self.trust_vgg16 = bool(self.trust_vgg16)

    # ---- actions ----------------------------------------------------------------------------------------------
    def job_params(self, target_png: bytes) -> dict:
        """Parameters of the 'project' job (`engine.projector.projection_job`)."""
        return dict(
            target_png=target_png, space=self.space, num_steps=int(self.num_steps), seed=int(self.seed),
            loss=self.loss, vgg16=self.vgg16_path or None, trust_vgg16=bool(self.trust_vgg16),
            preview_every=int(self.preview_every),
        )  # fmt: skip

    def start(self, path: str | os.PathLike | None = None) -> bool:
        """Starts projecting ``path`` (default ``target_path``); a running projection is cancelled first.

        Returns True when the job started; problems (missing file, too large, no network yet) go to ``status``.
        """
        self.validate()
        if path is not None:
            self.target_path = os.fspath(path)
        p = pathlib.Path(self.target_path)
        if not self.target_path:
            self.status = 'Give an image path or drop an image on the window'
            return False
        try:
            size = p.stat().st_size
            if size > MAX_TARGET_BYTES:
                self.status = f'{p.name} is {size / 2**20:.0f} MB; images up to 64 MB can be projected'
                return False
            data = p.read_bytes()
        except OSError as e:
            self.status = f'Cannot read {p}: {e.strerror or e}'
            return False
        if self.viz is None:
            return False
        if self.net is None:  # Dropped while the network loads: start when it is shown.
            self._pending_start = self.target_path
            self.status = f'{p.name}: waiting for the network'
            return False
        self._pending_start = None
        self.cancel()
        if not self.job.start('project', self.job_params(data), total=int(self.num_steps)):
            self.status = 'This renderer cannot run projections'
            return False
        self._job_pkl = self.view.request.pkl if self.view.request is not None else None
        self._target_name = p.name
        self.preview = None
        self.last_result = None
        self.status = f'Projecting {p.name}...'
        return True

    def cancel(self, reason: str = '') -> None:
        """Cancels a running projection (its final update then reads 'cancelled')."""
        if self.job.cancel(reason or 'Cancelled'):
            self.status = self.job.cancel_reason or 'Cancelled'

    def on_job_update(self, u) -> None:
        job = self.job
        if not job.update(u):
            return
        data = job.data
        if data and data.get('preview') is not None:
            self.preview = np.asarray(data['preview'], dtype=np.uint8)
            self._tex_dirty = True
        if job.state == 'running' and not job.cancelling:
            self.status = f'Projecting {self._target_name}: {job.message}'
        if job.running:
            return
        if job.state == 'cancelled':
            self.status = job.cancel_reason or f'Cancelled after {job.done} steps'
        elif job.state == 'done':
            self._finish(job.result or {}, job.elapsed_sec)
        else:
            self.status = job.error or 'projection failed'

    def _finish(self, result: dict, elapsed_sec: float) -> None:
        self.last_result = result
        target, image = result.get('target'), result.get('image')
        if target is not None and image is not None:
            both = np.concatenate([np.asarray(target, np.uint8), np.asarray(image, np.uint8)], axis=1)
            self.preview = np.repeat(both, 3, axis=2) if both.shape[2] == 1 else both
            self._tex_dirty = True
        ws = result.get('ws')
        name = f'projection of {self._target_name} ({result.get("space", self.space)}, {result.get("loss", "?")} loss)'
        if ws is not None and self.viz is not None:
            self.viz.latent.set_loaded_ws(np.asarray(ws, dtype=np.float32), name)
        self.status = f'Done in {elapsed_sec:.0f} s: the {name} is the current latent (Save W in the Latent pane)'

    # ---- per frame --------------------------------------------------------------------------------------------
    def update_request(self, args: dict[str, Any], dt: float) -> None:
        if self._pending_start is not None and self.net is not None:
            self.start(self._pending_start)
        # Another network load cancels a projection running on the previous one.
        if self.job_id is not None and args.get('pkl', self._job_pkl) != self._job_pkl:
            self.cancel('Cancelled: another network was loaded')

    def dump(self) -> dict:
        """Widget outcome for the script hook's dump_state."""
        return {
            'job_id': self.job_id,
            'status': self.status,
            'progress': list(self.progress),
            'has_preview': self.preview is not None,
            'done': self.last_result is not None,
            'steps_run': None if self.last_result is None else self.last_result.get('steps_run'),
        }

    def draw(self) -> None:
        fs = self.font_size
        imgui.set_next_item_width(-fs * 5.5)
        self.target_path = edited(self.target_path, imgui.input_text('##target', self.target_path))
        imgui.same_line()
        running = self.job_id is not None
        if running:
            if imgui.button('Cancel##proj', imgui.ImVec2(fs * 5, 0)):
                self.cancel('Cancelled by the user')
        elif imgui.button('Project', imgui.ImVec2(fs * 5, 0)):
            self.start()
        imgui.text_disabled('Image path above, or drop an image on the window')
        imgui.set_next_item_width(fs * 5)
        if imgui.begin_combo('Space', self.space.upper()):
            for s in SPACES:
                if imgui.selectable(s.upper(), s == self.space)[0]:
                    self.space = s
            imgui.end_combo()
        imgui.same_line()
        imgui.set_next_item_width(fs * 6)
        self.num_steps = edited(self.num_steps, imgui.input_int('Steps', self.num_steps, 50, 500))
        imgui.set_next_item_width(fs * 6)
        self.seed = edited(self.seed, imgui.input_int('Seed##proj', self.seed))
        imgui.same_line()
        imgui.set_next_item_width(fs * 6)
        if imgui.begin_combo('Loss', self.loss):
            for s in LOSSES:
                if imgui.selectable(s, s == self.loss)[0]:
                    self.loss = s
            imgui.end_combo()
        if self.loss != 'builtin':
            imgui.set_next_item_width(-fs * 6)
            self.vgg16_path = edited(self.vgg16_path, imgui.input_text('VGG16 file', self.vgg16_path))
            self.trust_vgg16 = edited(
                self.trust_vgg16, imgui.checkbox('Run an unverified VGG16 file', self.trust_vgg16)
            )
        self.validate()
        done, total = self.progress
        imgui.progress_bar(self.job.fraction, imgui.ImVec2(-1, 0), f'{done}/{total}' if running or done else '')
        imgui.push_text_wrap_pos(0.0)
        imgui.text(self.status or ' ')
        imgui.pop_text_wrap_pos()
        self._draw_preview()

    def _draw_preview(self) -> None:
        if self.preview is None:
            return
        from gui_utils.gl_utils import Texture

        if self._tex is None:
            self._tex = Texture(self.preview, nearest=True, mipmap=False)
        elif self._tex_dirty:
            self._tex.update(self.preview)
        self._tex_dirty = False
        h, w = self.preview.shape[:2]
        avail = imgui.get_content_region_avail().x
        scale = max(1, int(avail // w)) if avail >= w else avail / w
        imgui.image(imgui.ImTextureRef(self._tex.gl_id), imgui.ImVec2(w * scale, h * scale))
        imgui.text_disabled('target | reconstruction')


def _clamp_int(v: Any, lo: int, hi: int, default: int) -> int:
    try:
        v = int(v)
    except (TypeError, ValueError, OverflowError):
        return default
    return min(max(v, lo), hi)
