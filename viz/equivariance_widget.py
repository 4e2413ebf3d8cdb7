"""Equivariance widget: translate / rotate / scale / shear / mirror the SG3 input, Anim, round to pixels, untransform
(compatibility.md §3, §6), the live EQ readout and "Measure" (a short EQ-T / EQ-T frac / EQ-R run in the render process).

The readout is ``metrics.equivariance``'s per-sample computation, made by the render process
(``RenderRequest.lab_eq`` -> ``RenderResult.lab['eq']``); Measure runs the 'measure_equivariance' job and appends
its result to a JSON-lines log in the format of ``calc_metrics.py`` (``metrics.metric_main.report_metric``).
"""

from __future__ import annotations

import json
import math
import os
import time

from imgui_bundle import imgui

from engine.latents import make_transform
from viz.job_client import JobClient, draw_progress, job_id_property
from viz.widget import Widget, edited

DRAG_FAST = 1e-2  # translation per font-size of mouse travel (image spans 1)
DRAG_SLOW = 4e-4
DRAG_ROTATE = 2e-2  # turns per font-size of mouse travel
XLATE_LIMIT = 1e3  # |translation| (image widths) beyond this is clamped
ROTATE_LIMIT_TURNS = 1e6
SCALE_RANGE = (0.125, 8.0)
SHEAR_RANGE = (-2.0, 2.0)
MEASURE_NUM_RANGE = (1, 100_000)
MEASURE_METRICS = ('eqt50k_int', 'eqt50k_frac', 'eqr50k')  # calc_metrics.py's names; N overrides the 50k
EQ_KIND_NAMES = {
    'int': 'integer translation (EQ-T)',
    'frac': 'fractional translation (EQ-T frac)',
    'affine': 'affine (EQ-R)',
}


def make_input_transform(
    tx: float,
    ty: float,
    rotate_turns: float,
    *,
    scale: float = 1.0,
    shear: float = 0.0,
    mirror: bool = False,
) -> tuple[tuple[float, float, float], ...]:
    """The user's 3x3 transform (docs/compatibility.md §3, extended by scale, shear and mirror; see
    ``engine.latents.make_transform``): ``[[L, t], [0, 0, 1]]``, ``L = R(a) @ Shear(shear) @ scale @ Mirror``.

    Args:
        tx, ty: translation in units where the image spans 1.
        rotate_turns: rotation in turns (1 turn = 2*pi radians); ``a = 2 * pi * rotate_turns``.
        scale: isotropic scale (> 0; > 1 enlarges the content).
        shear: horizontal shear factor (x += shear * y).
        mirror: mirror left-right.

    Returns:
        Row-major 3x3 tuple (RenderRequest.input_transform); the renderer feeds the synthesis input its inverse.

    Raises:
        ValueError: scale <= 0 or a non-finite scale/shear.
    """
    m = make_transform((tx, ty), 360.0 * float(rotate_turns), scale=scale, shear=shear, mirror=mirror)
    return tuple(tuple(float(v) for v in row) for row in m)


def round_to_pixels(v: float, img_resolution: int) -> float:
    """Rounds a translation (image spans 1) to whole output pixels."""
    return round(v * img_resolution) / img_resolution


def advance_translate(x: float, y: float, dt: float, speed: float) -> tuple[float, float]:
    """Translation animation: moves (x, y) along a circle around the origin at ``speed`` (image widths per second).

    A point at the origin starts on a circle of radius 0.1.
    """
    r = math.hypot(x, y)
    if r < 1e-4:
        x, y, r = 0.1, 0.0, 0.1
    a = math.atan2(y, x) + dt * speed / r
    return r * math.cos(a), r * math.sin(a)


class EquivarianceWidget(Widget):
    """Translate (drag fast/slow, Anim, Round to pixels, speed), rotate (drag, Anim, speed), Untransform.

    Greyed out when the network has no input transform (StyleGAN2). State: ``xlate_x, xlate_y`` (image spans 1),
    ``xlate_anim, xlate_round, xlate_speed``, ``rotate`` (turns), ``rotate_anim, rotate_speed``, ``scale`` (> 0),
    ``shear``, ``mirror``, ``untransform``, ``eq_readout`` (compute the live PSNR), ``measure_num`` (samples),
    ``measure_log`` (JSON-lines file Measure appends to).
    """

    TITLE = 'Equivariance'
    KEY = 'equivariance'
    STATE_KEYS = (
        'xlate_x',
        'xlate_y',
        'xlate_anim',
        'xlate_round',
        'xlate_speed',
        'rotate',
        'rotate_anim',
        'rotate_speed',
        'scale',
        'shear',
        'mirror',
        'untransform',
        'eq_readout',
        'measure_num',
        'measure_log',
    )
    DEFAULT_OPEN = False

    def __init__(self, viz=None) -> None:
        super().__init__(viz)
        self.xlate_x = 0.0
        self.xlate_y = 0.0
        self.xlate_anim = False
        self.xlate_round = False
        self.xlate_speed = 1e-2
        self.rotate = 0.0
        self.rotate_anim = False
        self.rotate_speed = 1e-2
        self.scale = 1.0
        self.shear = 0.0
        self.mirror = False
        self.untransform = False
        self.eq_readout = True
        self.measure_num = 100
        self.measure_log = os.path.join('captures', 'metric-equivariance-lab.jsonl')
        # Runtime.
        self.eq: dict | None = None  # {'eq_psnr_db', 'eq_kind', 'eq_valid_frac', 'layer'} of the displayed result
        self.job = JobClient(self)  # The 'measure_equivariance' job.
        self.measure_result: dict | None = None
        self.message = ''

    job_id = job_id_property()

    @property
    def job_progress(self) -> tuple[int, int, str]:
        """(done, total, text) of the Measure job."""
        return self.job.progress

    def validate(self) -> None:
        def finite(v: float, lo: float, hi: float) -> float:
            return float(min(max(v, lo), hi)) if math.isfinite(v) else 0.0

        self.xlate_x = finite(self.xlate_x, -XLATE_LIMIT, XLATE_LIMIT)
        self.xlate_y = finite(self.xlate_y, -XLATE_LIMIT, XLATE_LIMIT)
        self.rotate = finite(self.rotate, -ROTATE_LIMIT_TURNS, ROTATE_LIMIT_TURNS)
        self.xlate_speed = finite(self.xlate_speed, 0.0, 0.5)
        self.rotate_speed = finite(self.rotate_speed, 0.0, 0.5)
        for name, default in (('shear', 0.0), ('scale', 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                setattr(self, name, default)
        self.scale = float(min(max(self.scale, SCALE_RANGE[0]), SCALE_RANGE[1]))
        self.shear = float(min(max(self.shear, SHEAR_RANGE[0]), SHEAR_RANGE[1]))
        try:
            self.measure_num = int(min(max(int(self.measure_num), MEASURE_NUM_RANGE[0]), MEASURE_NUM_RANGE[1]))
        except (TypeError, ValueError):
            self.measure_num = 100
        self.measure_log = str(self.measure_log or os.path.join('captures', 'metric-equivariance-lab.jsonl'))

    def enabled(self) -> bool:
        return self.net is not None and self.net.has_input_transform

    def transform(self) -> tuple[tuple[float, float, float], ...] | None:
        """The request's input_transform (None when disabled or identity)."""
        if not self.enabled():
            return None
        tx, ty = self.xlate_x, self.xlate_y
        if self.xlate_round:
            res = self.net.img_resolution
            tx, ty = round_to_pixels(tx, res), round_to_pixels(ty, res)
        if tx == 0 and ty == 0 and self.rotate % 1.0 == 0 and self.scale == 1 and self.shear == 0 and not self.mirror:
            return None
        return make_input_transform(tx, ty, self.rotate, scale=self.scale, shear=self.shear, mirror=self.mirror)

    def update_request(self, args, dt) -> None:
        if self.enabled():
            if self.xlate_anim:
                self.xlate_x, self.xlate_y = advance_translate(self.xlate_x, self.xlate_y, dt, self.xlate_speed)
            if self.rotate_anim:
                self.rotate += dt * self.rotate_speed
        args['input_transform'] = self.transform()
        args['untransform'] = bool(self.untransform and self.enabled())
        args['lab_eq'] = bool(self.eq_readout and self.enabled())

    def on_result(self, result) -> None:
        if result.image is None:
            return
        lab = getattr(result, 'lab', None) or {}
        self.eq = (
            {k: lab.get(k) for k in ('eq_psnr_db', 'eq_kind', 'eq_valid_frac', 'layer')} if 'eq_kind' in lab else None
        )

    def readout_text(self) -> str:
        """'EQ 31.42 dB, fractional translation (EQ-T frac), 87% valid' (or why there is none)."""
        if not self.enabled():
            return 'EQ: needs an input transform (StyleGAN3)'
        if not self.eq_readout:
            return 'EQ: readout off'
        eq = self.eq
        if eq is None:
            return 'EQ: identity transform (translate or rotate to measure)'
        if eq['eq_psnr_db'] is None or not math.isfinite(eq['eq_psnr_db']):
            return 'EQ: no valid pixels to compare (transform too large)'
        kind = EQ_KIND_NAMES.get(eq['eq_kind'], eq['eq_kind'])
        return f'EQ {eq["eq_psnr_db"]:.2f} dB, {kind}, {eq["eq_valid_frac"] * 100:.0f}% valid ({eq.get("layer", "output")})'

    # ---- Measure ------------------------------------------------------------------------------------------
    def start_measure(self) -> None:
        if self.viz is None or self.job.running or not self.enabled():
            return
        params = dict(num=int(self.measure_num), metrics=list(MEASURE_METRICS), seed=0)
        if not self.job.start('measure_equivariance', params):
            self.message = 'This renderer cannot run jobs'
            return
        self.message = ''

    def cancel_measure(self) -> None:
        self.job.cancel()

    def on_job_update(self, u) -> None:
        if not self.job.update(u) or self.job.running:
            return
        if self.job.state == 'error':
            self.message = self.job.error or 'Measure failed'
        elif self.job.state == 'cancelled':
            self.message = 'Measure cancelled'
        else:
            self.measure_result = dict(self.job.result or {})
            self.append_log(self.measure_result)

    def append_log(self, result: dict) -> None:
        """Appends one line per metric to ``measure_log`` in calc_metrics.py's JSON-lines format."""
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.measure_log)), exist_ok=True)
            with open(self.measure_log, 'a', encoding='utf-8') as f:
                for line in measure_log_lines(result):
                    f.write(json.dumps(line) + '\n')
            self.message = f'Appended to {self.measure_log}'
        except OSError as e:
            self.message = f'Could not write {self.measure_log}: {e}'

    def _drag_button(self, label: str, per_font_px: float, axis2: bool) -> None:
        imgui.button(label)
        if imgui.is_item_active() and not imgui.is_item_activated():  # The press frame's delta is the approach.
            d = imgui.get_io().mouse_delta
            k = per_font_px / max(self.font_size, 1.0)
            if axis2:
                self.xlate_x += d.x * k
                self.xlate_y += d.y * k
            else:
                self.rotate += d.x * k

    def _speed_field(self, label: str, value: float) -> float:
        """An animation speed (0 .. 0.5 per second) drag field, ``fs * 6`` wide."""
        imgui.set_next_item_width(self.font_size * 6)
        flags = imgui.SliderFlags_.always_clamp
        return edited(value, imgui.drag_float(label, value, 5e-4, 0.0, 0.5, 'Speed %.3f', flags))

    def draw(self) -> None:
        imgui.begin_disabled(not self.enabled())
        self._draw_translate()
        self._draw_rotate()
        self._draw_scale_shear_mirror()
        _, self.untransform = imgui.checkbox('Untransform', self.untransform)
        imgui.same_line()
        if imgui.button('Reset##eq'):
            self.reset()
        imgui.same_line()
        _, self.eq_readout = imgui.checkbox('EQ readout', self.eq_readout)
        imgui.text(self.readout_text())
        self._draw_measure()
        imgui.end_disabled()
        if not self.enabled():
            imgui.text_disabled('The network has no input transform (StyleGAN2).')

    def _draw_translate(self) -> None:
        """Translate x/y, Drag fast / slow, Anim, Round to pixels, speed."""
        imgui.set_next_item_width(self.font_size * 10)
        changed, xy = imgui.drag_float2('Translate', [self.xlate_x, self.xlate_y], 1e-3, -1.0, 1.0, '%.4f')
        if changed:
            self.xlate_x, self.xlate_y = xy
            self.validate()
        imgui.same_line()
        self._drag_button('Drag fast##xlate', DRAG_FAST, True)
        imgui.same_line()
        self._drag_button('Drag slow##xlate', DRAG_SLOW, True)
        _, self.xlate_anim = imgui.checkbox('Anim##xlate', self.xlate_anim)
        imgui.same_line()
        _, self.xlate_round = imgui.checkbox('Round to pixels', self.xlate_round)
        imgui.same_line()
        self.xlate_speed = self._speed_field('##xlate_speed', self.xlate_speed)

    def _draw_rotate(self) -> None:
        """Rotate (turns), Drag, Anim, speed."""
        imgui.set_next_item_width(self.font_size * 10)
        self.rotate = edited(self.rotate, imgui.drag_float('Rotate (turns)', self.rotate, 1e-3, -10.0, 10.0, '%.4f'))
        imgui.same_line()
        self._drag_button('Drag##rotate', DRAG_ROTATE, False)
        _, self.rotate_anim = imgui.checkbox('Anim##rotate', self.rotate_anim)
        imgui.same_line()
        self.rotate_speed = self._speed_field('##rotate_speed', self.rotate_speed)

    def _draw_scale_shear_mirror(self) -> None:
        fs = self.font_size
        imgui.set_next_item_width(fs * 6)
        self.scale = edited(
            self.scale,
            imgui.slider_float('Scale', self.scale, *SCALE_RANGE, '%.3f', imgui.SliderFlags_.logarithmic),
        )
        imgui.same_line()
        imgui.set_next_item_width(fs * 6)
        self.shear = edited(self.shear, imgui.slider_float('Shear', self.shear, *SHEAR_RANGE, '%.3f'))
        imgui.same_line()
        _, self.mirror = imgui.checkbox('Mirror', self.mirror)

    def _draw_measure(self) -> None:
        """N, Measure (greyed out while it runs), progress + Cancel, the last result and message."""
        fs = self.font_size
        imgui.begin_disabled(self.job.running)
        imgui.set_next_item_width(fs * 6)
        self.measure_num = edited(self.measure_num, imgui.input_int('##measure_num', self.measure_num, 10, 100))
        self.measure_num = int(min(max(self.measure_num, MEASURE_NUM_RANGE[0]), MEASURE_NUM_RANGE[1]))
        imgui.same_line()
        if imgui.button('Measure'):
            self.start_measure()
        imgui.end_disabled()
        if imgui.is_item_hovered():
            imgui.set_tooltip('EQ-T, EQ-T frac and EQ-R over N samples (seed 0), as calc_metrics.py computes them')
        if draw_progress(self.job, fs * 14, 'measure'):
            self.cancel_measure()
        if self.measure_result is not None:
            r = self.measure_result
            vals = '  '.join(f'{k} {v:.2f} dB' for k, v in r.get('results', {}).items())
            imgui.text(f'{vals}  ({r.get("num_samples")} samples, {r.get("total_time_str", "")})')
        if self.message:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_disabled(self.message)
            imgui.pop_text_wrap_pos()


def measure_log_lines(result: dict) -> list[dict]:
    """calc_metrics.py's JSON lines for a 'measure_equivariance' job result, one per metric: the registered names
    (``eqt50k_int``, ``eqt50k_frac``, ``eqr50k``) with ``num_samples`` = N, as ``calc_metrics.py --num=N`` writes
    them (``metrics.metric_main.calc_metric`` / ``report_metric``): ``{"results": {name: dB}, "metric": name,
    "total_time", "total_time_str", "num_gpus": 1, "num_samples", "snapshot_pkl", "timestamp"}``."""
    lines = []
    for key, value in result.get('results', {}).items():
        lines.append(
            {
                'results': {key: float(value)},
                'metric': key,
                'total_time': float(result.get('total_time', 0.0)),
                'total_time_str': str(result.get('total_time_str', '')),
                'num_gpus': 1,
                'num_samples': int(result.get('num_samples', 0)),
                'snapshot_pkl': str(result.get('snapshot_pkl', '')),
                'timestamp': float(result.get('timestamp', time.time())),
            }
        )
    return lines
