"""Spectral lab widget: radial plot of the current view's spectrum, reference overlay, pins, seed average, export.

The curves are `avg_spectra.py slices`' (0- and 45-degree slices) plus the radially averaged profile, in dB against
frequency in cycles/pixel (Nyquist = 0.5 marked), all made by ``engine.spectrum_io.spectrum_profiles`` -- the same
numpy code the CLI runs. The render process computes the live view's profiles (``RenderRequest.lab_spectrum``) and
the long jobs ('average_spectrum', 'view_spectrum'); this module never imports torch.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pathlib
from typing import Any

import numpy as np
from imgui_bundle import imgui, implot

from engine import spectrum_io
from viz.job_client import JobClient, draw_progress, job_id_property
from viz.widget import Widget, edited

logger = logging.getLogger(__name__)

OUTPUT_LAYER = 'output'
MAX_PINS = 4
AVG_NUM_RANGE = (1, 100_000)
INTERP_RANGE = (1, 8)
BETA_RANGE = (0.0, 50.0)
DB_LIMITS = (-200.0, 200.0)
PROFILE_KEYS = ('freq_0', 'slice_0', 'freq_45', 'slice_45', 'freq_r', 'radial')  # engine.lab.PROFILE_KEYS
CURVE_KEYS = (('0', 'freq_0', 'slice_0'), ('45', 'freq_45', 'slice_45'), ('avg', 'freq_r', 'radial'))
PALETTE = (  # RGBA of current, reference, average, pins (tab10-like, readable on dark backgrounds).
    (0.35, 0.65, 1.0, 1.0),
    (1.0, 0.6, 0.2, 1.0),
    (0.4, 0.85, 0.4, 1.0),
    (0.95, 0.4, 0.45, 1.0),
    (0.75, 0.55, 0.95, 1.0),
    (0.65, 0.5, 0.4, 1.0),
    (0.95, 0.55, 0.85, 1.0),
)


@dataclasses.dataclass
class Curves:
    """One spectrum's plottable curves: ``profiles`` {freq_0, slice_0, freq_45, slice_45, freq_r, radial} (cycles/
    pixel, dB), the npz metadata ``meta`` (image_size, beta, interp, num, mean, std, source) and, when known, the
    full unshifted linear ``spectrum`` [S, S] (for npz export)."""

    label: str
    profiles: dict
    meta: dict
    spectrum: np.ndarray | None = None

    @classmethod
    def from_spectrum(cls, label: str, spec: dict) -> Curves:
        """From a dict in the npz format (``load_spectrum``, a job result)."""
        meta = {k: v for k, v in spec.items() if k not in ('spectrum', 'profiles')}
        arr = np.asarray(spec['spectrum'], dtype=np.float64)
        return cls(label, spectrum_io.spectrum_profiles(arr), meta, arr)

    @classmethod
    def from_live(cls, label: str, lab: dict) -> Curves:
        """From ``RenderResult.lab`` (flat: profile lists + npz metadata, no full spectrum)."""
        meta = {k: lab[k] for k in spectrum_io.SPECTRUM_META_KEYS + ('image_size', 'layer') if k in lab}
        return cls(label, {k: np.asarray(lab[k], dtype=np.float64) for k in PROFILE_KEYS}, meta)

    def to_json(self, max_points: int = 4096) -> dict:
        """JSON-ready profiles (lists) and metadata, for ``dump_state``."""
        prof = {k: [float(x) for x in np.asarray(v)[:max_points]] for k, v in self.profiles.items()}
        meta = {
            k: (v if isinstance(v, int | float | str | bool) or v is None else str(v)) for k, v in self.meta.items()
        }
        return {'label': self.label, 'profiles': prof, 'meta': meta}


def curve_style(label: str, color: int) -> tuple[tuple[float, float, float, float], float]:
    """(RGBA, line weight) of a curve: one hue per spectrum; the 0-degree slice full colour, the 45-degree slice
    dimmed and thin, the radial average tinted towards white and thick."""
    r, g, b, _ = PALETTE[color % len(PALETTE)]
    if label.endswith('45 deg'):
        return (r, g, b, 0.55), 1.0
    if label.endswith('radial avg'):
        return (r + (1 - r) * 0.45, g + (1 - g) * 0.45, b + (1 - b) * 0.45, 1.0), 2.5
    return (r, g, b, 1.0), 1.5


def curve_spec(label: str, color: int):
    """The implot.Spec of :func:`curve_style`."""
    rgba, weight = curve_style(label, color)
    spec = implot.Spec()
    spec.line_color = imgui.ImVec4(*rgba)
    spec.line_weight = weight
    return spec


def peak_frequency(profiles: dict, key: str = 'radial', *, skip_dc_bins: int = 2) -> float:
    """Frequency (cycles/pixel) of the largest value of a curve ('radial', 'slice_0' or 'slice_45'), ignoring the
    first ``skip_dc_bins`` bins (the DC leakage of the window)."""
    freq_key = {'radial': 'freq_r', 'slice_0': 'freq_0', 'slice_45': 'freq_45'}[key]
    v = np.asarray(profiles[key])[skip_dc_bins:]
    return float(np.asarray(profiles[freq_key])[skip_dc_bins:][int(np.argmax(v))])


def default_export_stem(net_name: str, layer: str, seed: int) -> str:
    """'captures/spectrum-<net>-<layer>-seed<seed>' with unsafe characters replaced by '_'."""
    safe = ''.join(c if c.isalnum() or c in '-_.' else '_' for c in f'{net_name}-{layer}-seed{seed}')
    return f'spectrum-{safe}'


class SpectrumLabWidget(Widget):
    """Radial plot controls: curves, reference npz, pins (A/B), "Average N seeds" job, export (npz, CSV, PNG).

    State: ``show_plot``, ``show_0``, ``show_45``, ``show_radial``, ``beta``, ``interp``, ``ref_path``,
    ``use_ref_norm`` (normalise the final image with the reference's mean/std, so levels are comparable),
    ``avg_num``, ``export_dir``, ``db_min``, ``db_max``.
    """

    TITLE = 'Spectral lab'
    KEY = 'spectrum_lab'
    STATE_KEYS = (
        'show_plot',
        'show_0',
        'show_45',
        'show_radial',
        'beta',
        'interp',
        'ref_path',
        'use_ref_norm',
        'avg_num',
        'export_dir',
        'db_min',
        'db_max',
    )
    DEFAULT_OPEN = False

    def __init__(self, viz=None) -> None:
        super().__init__(viz)
        self.show_plot = False
        self.show_0 = True
        self.show_45 = True
        self.show_radial = True
        self.beta = 8.0
        self.interp = 4
        self.ref_path = ''
        self.use_ref_norm = True
        self.avg_num = 100
        self.export_dir = 'captures'
        self.db_min = -50.0
        self.db_max = 30.0
        # Runtime (not saved).
        self.current: Curves | None = None
        self.reference: Curves | None = None
        self.average: Curves | None = None
        self.pins: list[Curves] = []
        self.message = ''
        self.job = JobClient(self)  # 'average_spectrum' or 'view_spectrum' (npz export of the current view).
        self._loaded_ref_path: str | None = None
        self._pending_export: str | None = None
        self._num_pinned = 0
        self._ref_path_edit = ''
        self.plot_rect = (0.0, 0.0, 0.0, 0.0)  # Screen rect of the last drawn plot (PNG export crops it).

    job_id = job_id_property()

    @property
    def job_kind(self) -> str:
        """Kind of the last job started ('' before the first)."""
        return self.job.kind

    @property
    def job_progress(self) -> tuple[int, int, str]:
        """(done, total, text) of the last job."""
        return self.job.progress

    # ---- state --------------------------------------------------------------------------------------------
    def validate(self) -> None:
        self.beta = float(min(max(float(self.beta), BETA_RANGE[0]), BETA_RANGE[1])) if math.isfinite(self.beta) else 8.0
        self.interp = int(min(max(int(self.interp), INTERP_RANGE[0]), INTERP_RANGE[1]))
        self.avg_num = int(min(max(int(self.avg_num), AVG_NUM_RANGE[0]), AVG_NUM_RANGE[1]))
        lo = float(self.db_min) if math.isfinite(self.db_min) else -50.0
        hi = float(self.db_max) if math.isfinite(self.db_max) else 30.0
        lo, hi = min(max(lo, DB_LIMITS[0]), DB_LIMITS[1]), min(max(hi, DB_LIMITS[0]), DB_LIMITS[1])
        self.db_min, self.db_max = (lo, hi) if hi > lo else (-50.0, 30.0)
        self.ref_path = str(self.ref_path or '')
        self.export_dir = str(self.export_dir or 'captures')
        if self.ref_path != (self._loaded_ref_path or ''):
            self.load_reference(self.ref_path or None)

    # ---- pure logic ---------------------------------------------------------------------------------------
    def layer_name(self) -> str:
        """The layer on screen ('output' = the final image)."""
        return getattr(self.view.image_result, 'layer_name', None) or OUTPUT_LAYER

    def _seed(self) -> int:
        req = self.view.image_request
        return int(req.w0_seeds[0][0]) if req is not None and req.w0_seeds else 0

    def norm(self) -> tuple[float, float] | None:
        """(mean, std) sent with the request: the reference's when loaded and ``use_ref_norm``, else None (the
        renderer then normalises by the view's own statistics). Applies to the final image only."""
        ref = self.reference
        if not self.use_ref_norm or ref is None:
            return None
        mean, std = ref.meta.get('mean'), ref.meta.get('std')
        if isinstance(mean, int | float) and isinstance(std, int | float) and std > 0 and math.isfinite(mean):
            return float(mean), float(std)
        return None

    def update_request(self, args: dict[str, Any], dt: float) -> None:
        args['lab_spectrum'] = bool(self.show_plot)
        args['lab_beta'] = float(self.beta)
        args['lab_interp'] = int(self.interp)
        args['lab_norm'] = self.norm() if self.show_plot else None

    def on_result(self, result) -> None:
        lab = getattr(result, 'lab', None) or {}
        if 'radial' in lab:
            self.current = Curves.from_live(f'current ({lab.get("layer", self.layer_name())})', lab)
        elif result.image is not None and not self.show_plot:
            self.current = None
        if lab.get('error'):
            self.message = f'Lab: {lab["error"]}'

    def curves(self) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
        """What the plot draws: (legend label, freq cycles/pixel, level dB, palette index) per visible curve."""
        out = []
        sets = [(self.current, 0), (self.reference, 1), (self.average, 2)]
        sets += [(p, 3 + i) for i, p in enumerate(self.pins)]
        wanted = {'0': self.show_0, '45': self.show_45, 'avg': self.show_radial}
        for c, color in sets:
            if c is None:
                continue
            for name, fk, vk in CURVE_KEYS:
                if wanted[name] and fk in c.profiles:
                    suffix = {'0': '0 deg', '45': '45 deg', 'avg': 'radial avg'}[name]
                    out.append((f'{c.label}, {suffix}', np.asarray(c.profiles[fk]), np.asarray(c.profiles[vk]), color))
        return out

    def load_reference(self, path: str | None) -> bool:
        """Loads an ``avg_spectra.py calc`` npz as the reference (None / '' clears it). Errors go to
        :attr:`message`; the previous reference stays. Returns True on success."""
        if not path:
            self.reference = None
            self.ref_path = ''
            self._loaded_ref_path = None
            return True
        try:
            spec = spectrum_io.load_spectrum(os.path.expanduser(str(path)))
        except ValueError as e:
            self.message = str(e)
            self.ref_path = self._loaded_ref_path or ''
            return False
        label = pathlib.Path(str(path)).stem
        if 'num' in spec:
            label += f' ({spec["num"]} images)'
        self.reference = Curves.from_spectrum(label, spec)
        self.ref_path = str(path)
        self._loaded_ref_path = str(path)
        self.message = f'Reference: {label}'
        return True

    def pin(self) -> bool:
        """Pins the current curves (A/B comparison); the oldest pin goes beyond MAX_PINS."""
        if self.current is None:
            self.message = 'Nothing to pin: turn on the radial plot first'
            return False
        net, seed = self.net, self._seed()
        name = os.path.basename((net.pkl if net is not None else '') or 'default')
        self._num_pinned += 1
        label = f'pin {self._num_pinned}: {name} seed {seed} {self.layer_name()}'
        pinned = dataclasses.replace(self.current, label=label)
        self.pins = (self.pins + [pinned])[-MAX_PINS:]
        return True

    def job_params(self) -> dict:
        """Parameters of the 'average_spectrum' job for the current state."""
        norm = self.norm() if self.layer_name() == OUTPUT_LAYER else None
        return dict(
            num=int(self.avg_num), beta=float(self.beta), interp=int(self.interp),
            mean=None if norm is None else norm[0], std=None if norm is None else norm[1],
        )  # fmt: skip

    def start_average(self) -> None:
        if self.viz is None or self.job.running:
            return
        if not self.job.start('average_spectrum', self.job_params()):
            self.message = 'This renderer cannot run jobs'

    def start_export_npz(self, path: str) -> None:
        """Writes the average when one is shown, else the exact current view (computed by a 'view_spectrum' job)."""
        if self.average is not None and self.average.spectrum is not None:
            self._write_npz(path, self.average)
            return
        if self.viz is None or self.job.running:
            return
        params = dict(beta=float(self.beta), interp=int(self.interp), norm=self.norm())
        if not self.job.start('view_spectrum', params):
            self.message = 'This renderer cannot run jobs'
            return
        self._pending_export = path

    def cancel_job(self) -> None:
        self.job.cancel()

    def on_job_update(self, u) -> None:
        job = self.job
        if not job.update(u) or job.running:
            return
        if job.state == 'error':
            self.message = job.error or 'job failed'
        elif job.state == 'cancelled':
            self.message = 'Cancelled'
            self._pending_export = None
        elif job.kind == 'average_spectrum':
            r = job.result or {}
            label = f'avg {r["num"]} seeds from {r["first_seed"]} ({r["layer"]})'
            self.average = Curves.from_spectrum(label, r)
            self.message = f'Averaged {r["num"]} seeds in {job.elapsed_sec:.1f} s'
        elif job.kind == 'view_spectrum' and self._pending_export:
            self._write_npz(self._pending_export, Curves.from_spectrum('current', job.result or {}))
            self._pending_export = None

    def _write_npz(self, path: str, c: Curves) -> None:
        try:
            spectrum_io.save_spectrum(path, dict(c.meta, spectrum=c.spectrum))
            self.message = f'Saved {path}'
        except (OSError, KeyError, ValueError) as e:
            self.message = f'Could not save {path}: {e}'

    def export_csv(self, path: str) -> bool:
        """Writes every visible spectrum's slices and radial average (columns ``CSV_HEADER``, angle 0, 45, 'avg')."""
        rows = []
        for c in [self.current, self.reference, self.average, *self.pins]:
            if c is not None:
                rows += spectrum_io.profile_rows(c.label, c.profiles, radial=True)
        if not rows:
            self.message = 'Nothing to export: turn on the radial plot first'
            return False
        try:
            spectrum_io.save_rows_csv(path, rows)
        except OSError as e:
            self.message = f'Could not save {path}: {e}'
            return False
        self.message = f'Saved {path}'
        return True

    def export_paths(self) -> dict[str, str]:
        """npz / csv / png paths in ``export_dir`` named after the network, layer and seed."""
        net, seed = self.net, self._seed()
        name = pathlib.Path((net.pkl if net is not None else '') or 'default').stem
        stem = os.path.join(self.export_dir, default_export_stem(name, self.layer_name(), seed))
        return {ext: f'{stem}.{ext}' for ext in ('npz', 'csv', 'png')}

    def export_png(self, path: str) -> None:
        if self.viz is None or self.plot_rect[2] <= 0:
            self.message = 'Nothing to export: the radial plot is not shown'
            return
        self.viz.request_crop_screenshot(path, self.plot_rect)
        self.message = f'Saved {path}'

    def dump(self) -> dict:
        """For ``dump_state``: the current, reference, average and pinned curves."""
        return {
            'current': self.current.to_json() if self.current is not None else None,
            'reference': self.reference.to_json() if self.reference is not None else None,
            'average': self.average.to_json() if self.average is not None else None,
            'pins': [p.to_json() for p in self.pins],
            'message': self.message,
            'job': {'id': self.job_id, 'kind': self.job_kind, 'progress': list(self.job_progress)},
        }

    # ---- drawing ------------------------------------------------------------------------------------------
    def draw(self) -> None:
        self._draw_curve_controls()
        self._draw_reference()
        if imgui.button('Pin current'):
            self.pin()
        imgui.same_line()
        imgui.begin_disabled(not self.pins)
        if imgui.button('Clear pins'):
            self.pins = []
        imgui.end_disabled()
        self._draw_average()
        self._draw_export()
        if self.message:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_disabled(self.message)
            imgui.pop_text_wrap_pos()

    def _draw_curve_controls(self) -> None:
        """Radial plot on/off, which curves, Kaiser beta, interp, the dB range."""
        fs = self.font_size
        _, self.show_plot = imgui.checkbox('Radial plot', self.show_plot)
        imgui.same_line()
        _, self.show_0 = imgui.checkbox('0 deg', self.show_0)
        imgui.same_line()
        _, self.show_45 = imgui.checkbox('45 deg', self.show_45)
        imgui.same_line()
        _, self.show_radial = imgui.checkbox('Radial avg', self.show_radial)
        imgui.set_next_item_width(fs * 6)
        self.beta = edited(self.beta, imgui.slider_float('Beta', self.beta, *BETA_RANGE, '%.1f'))
        imgui.same_line()
        imgui.set_next_item_width(fs * 6)
        self.interp = edited(self.interp, imgui.slider_int('Interp', self.interp, *INTERP_RANGE))
        imgui.same_line()
        imgui.set_next_item_width(fs * 7)
        changed, rng = imgui.drag_float2('dB', [self.db_min, self.db_max], 0.5, *DB_LIMITS, '%.0f')
        if changed and rng[1] > rng[0]:
            self.db_min, self.db_max = float(rng[0]), float(rng[1])

    def _draw_reference(self) -> None:
        """Reference npz path, Load ref / Clear ref, normalise by its mean/std."""
        imgui.set_next_item_width(self.font_size * 17)
        changed, self._ref_path_edit = imgui.input_text_with_hint(
            '##ref', 'reference .npz (avg_spectra.py calc)', self._ref_path_edit or self.ref_path
        )
        imgui.same_line()
        if imgui.button('Load ref'):
            self.load_reference(self._ref_path_edit.strip())
        imgui.same_line()
        if imgui.button('Clear ref'):
            self.load_reference(None)
            self._ref_path_edit = ''
        _, self.use_ref_norm = imgui.checkbox("Normalise by the reference's mean/std", self.use_ref_norm)

    def _draw_average(self) -> None:
        """N, Average N seeds (greyed out while a job runs), Clear avg, progress + Cancel."""
        fs = self.font_size
        imgui.begin_disabled(self.job.running or self.net is None)
        imgui.set_next_item_width(fs * 6)
        self.avg_num = edited(self.avg_num, imgui.input_int('##avg_num', self.avg_num, 10, 100))
        self.avg_num = int(min(max(self.avg_num, AVG_NUM_RANGE[0]), AVG_NUM_RANGE[1]))
        imgui.same_line()
        if imgui.button('Average N seeds'):
            self.start_average()
        imgui.end_disabled()
        imgui.same_line()
        imgui.begin_disabled(self.average is None)
        if imgui.button('Clear avg'):
            self.average = None
        imgui.end_disabled()
        if draw_progress(self.job, fs * 14, 'lab'):
            self.cancel_job()

    def _draw_export(self) -> None:
        """Export npz (greyed out while a job runs), CSV, PNG into ``export_dir``."""
        paths = self.export_paths()
        imgui.begin_disabled(self.job.running)
        if imgui.button('Export npz'):
            self.start_export_npz(paths['npz'])
        imgui.end_disabled()
        imgui.same_line()
        if imgui.button('Export CSV'):
            self.export_csv(paths['csv'])
        imgui.same_line()
        if imgui.button('Export PNG'):
            self.export_png(paths['png'])

    def draw_plot(self, x: float, y: float, w: float, h: float) -> None:
        """The radial plot in its own undecorated window at (x, y, w, h) of the image area."""
        imgui.set_next_window_pos(imgui.ImVec2(x, y))
        imgui.set_next_window_size(imgui.ImVec2(w, h))
        flags = (
            imgui.WindowFlags_.no_decoration
            | imgui.WindowFlags_.no_move
            | imgui.WindowFlags_.no_saved_settings
            | imgui.WindowFlags_.no_focus_on_appearing
            | imgui.WindowFlags_.no_nav
            | imgui.WindowFlags_.no_background
        )
        if imgui.begin('##radial_plot', None, flags)[0]:
            self._plot(imgui.ImVec2(-1, -1))
            self.plot_rect = (x, y, w, h)
        imgui.end()

    def _plot(self, size) -> None:
        if not implot.begin_plot('Power spectrum##radial', size, implot.Flags_.no_menus):
            return
        implot.setup_axes('frequency (cycles/pixel)', 'power (dB)')
        implot.setup_axis_limits(implot.ImAxis_.x1, 0.0, 0.5 * math.sqrt(2), implot.Cond_.always)
        implot.setup_axis_limits(implot.ImAxis_.y1, self.db_min, self.db_max, implot.Cond_.always)
        implot.setup_legend(implot.Location_.north_east, 0)
        for label, fx, fy, color in self.curves():
            implot.plot_line(label, fx.astype(np.float64), fy.astype(np.float64), curve_spec(label, color))
        spec = implot.Spec()
        spec.line_color = imgui.ImVec4(0.6, 0.6, 0.6, 1.0)
        implot.plot_inf_lines('Nyquist (0.5)', np.array([0.5]), spec)
        implot.end_plot()
