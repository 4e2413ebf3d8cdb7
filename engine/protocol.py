"""The only contract between the GUI and the renderer: frozen request/result dataclasses.

Each GUI frame, widgets fill their part of a :class:`RenderRequest`; the renderer (in this process or in a separate
render process, see ``engine.async_renderer``) turns it into a :class:`RenderResult`. Both are plain data: picklable,
free of torch tensors and of GUI objects, so this module imports only the standard library and numpy.

Conventions follow the reference visualizer (docs/compatibility.md §6): the latent is a weighted blend of seeds in W,
truncation lerps toward ``w_avg``, the layer view shows ``sel_channels`` consecutive channels starting at
``base_channel``, the FFT view is in dB over ``+-fft_range_db``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

NOISE_MODES = ('const', 'random', 'none')

# How ``RenderRequest.w0_seeds`` are blended: 'w' = weighted sum in W relative to w_avg (the reference visualizer);
# 'slerp_z' = spherical linear interpolation of the two seeds' z vectors, mapped once (Shoemake 1985; White,
# "Sampling Generative Networks", 2016, Sec. 2.1); one seed, or two with weights >= 0 summing to 1.
SEED_BLENDS = ('w', 'slerp_z')
SLERP_WEIGHT_TOL = 1e-6  # |w_a + w_b - 1| allowed for 'slerp_z'

# Name of the final image in ``RenderResult.layers`` and a valid ``RenderRequest.layer_name`` (like None).
OUTPUT_LAYER = 'output'

# Colours of the FFT view, low (-fft_range_db) to high (+fft_range_db): viridis (CC0, van der Walt & Smith 2015)
# sampled at 9 evenly spaced points; `fft_colormap` interpolates linearly between them.
_FFT_COLORMAP_ANCHORS = (
    (68, 1, 84),
    (71, 44, 122),
    (59, 82, 139),
    (44, 113, 142),
    (33, 145, 140),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
)


def fft_colormap(num_colors: int = 256) -> np.ndarray:
    """The FFT view's colormap (also for drawing its colour bar in the GUI).

    Args:
        num_colors: number of entries, >= 2.

    Returns:
        uint8 [num_colors, 3] RGB table; entry 0 is -fft_range_db, entry num_colors-1 is +fft_range_db, and a dB value
        v maps to entry round((v / fft_range_db + 1) / 2 * (num_colors - 1)) clamped.

    Raises:
        ValueError: if num_colors < 2.
    """
    if int(num_colors) < 2:
        raise ValueError(f'fft_colormap(): num_colors must be >= 2, got {num_colors}')
    anchors = np.asarray(_FFT_COLORMAP_ANCHORS, dtype=np.float64)  # [9, 3]
    pos = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, int(num_colors))
    lut = np.stack([np.interp(t, pos, anchors[:, i]) for i in range(3)], axis=1)
    return np.round(lut).clip(0, 255).astype(np.uint8)


# Legal ranges of the numeric RenderRequest fields: the one place every user of a request validates against (the GUI
# widgets while drawing, saved sessions when loaded, the renderer before rendering, the remote server). Bounds are
# inclusive. Seeds are the reference tools' uint32 seeds (``np.random.RandomState`` accepts 0 .. 2**32 - 1).
SEED_MAX = 2**32 - 1
REQUEST_LIMITS: dict[str, tuple[float, float]] = {
    'seed': (0, SEED_MAX),  # every seed in w0_seeds, and stylemix_seed
    'stylemix_seed': (0, SEED_MAX),
    'noise_seed': (0, SEED_MAX),
    'trunc_psi': (-1.0, 2.0),
    'stylemix_weight': (0.0, 1.0),
    'img_scale_db': (-40.0, 40.0),
    'fft_range_db': (0.1, 100.0),
    'fft_beta': (0.0, 50.0),
    'base_channel': (0, 2**31 - 1),
    'trunc_cutoff': (0, 2**31 - 1),
    'class_idx': (0, 2**31 - 1),
    'lab_beta': (0.0, 1000.0),  # Kaiser beta of the spectral lab (avg_spectra's --beta)
    'lab_interp': (1, 16),  # zero-padding factor of the spectral lab (avg_spectra's --interp)
}


def clamp_value(name: str, value, *, integer: bool | None = None) -> tuple[float | int, str | None]:
    """Clamps one request value into ``REQUEST_LIMITS[name]``.

    Args:
        name: a key of ``REQUEST_LIMITS``.
        value: a number (int, float, numpy scalar, or a numeric string); NaN becomes the lower bound.
        integer: round to an int (default: when both bounds are ints).

    Returns:
        (the clamped value, a one-line note saying what changed, or None when it was already legal).

    Raises:
        KeyError: unknown ``name``.
        ValueError: ``value`` is not a number.
    """
    lo, hi = REQUEST_LIMITS[name]
    is_int = isinstance(lo, int) and isinstance(hi, int) if integer is None else integer
    try:
        v = float(value) if not isinstance(value, int) or isinstance(value, bool) else value
    except (TypeError, ValueError) as e:
        raise ValueError(f'clamp_value(): {name} must be a number, got {value!r}') from e
    if isinstance(v, float) and v != v:  # NaN
        clamped: float | int = lo
    else:
        clamped = min(max(v, lo), hi)
    if is_int:
        clamped = int(clamped) if isinstance(clamped, int) else int(max(min(round(clamped), hi), lo))
    else:
        clamped = float(clamped)
    changed = clamped != v or (isinstance(v, float) and v != v)
    note = f'{name} {value!r} is outside {_num(lo)}..{_num(hi)}; clamped to {_num(clamped)}' if changed else None
    return clamped, note


def _num(v: float | int) -> str:
    return str(v) if isinstance(v, int) else f'{v:g}'


def clamp_request(req: RenderRequest) -> tuple[RenderRequest, tuple[str, ...]]:
    """Every numeric field of ``req`` clamped into ``REQUEST_LIMITS``.

    Returns:
        (the legal request, one note per clamped value). Structural problems (no seeds, an unknown noise mode, a
        singular transform) are not fixed here: :func:`request_errors` names them.
    """
    notes: list[str] = []

    def fix(name: str, value, key: str | None = None):
        v, note = clamp_value(key or name, value)
        if note:
            notes.append(note)
        return v

    changes: dict = {}
    seeds = tuple((fix('seed', s), float(w)) for s, w in req.w0_seeds)
    if seeds != req.w0_seeds:
        changes['w0_seeds'] = seeds
    for name in ('stylemix_seed', 'noise_seed', 'trunc_psi', 'stylemix_weight', 'img_scale_db', 'fft_range_db',
                 'fft_beta'):  # fmt: skip
        v = fix(name, getattr(req, name))
        if v != getattr(req, name):
            changes[name] = v
    for name in ('base_channel', 'class_idx'):
        old = getattr(req, name)
        if old is not None and fix(name, old) != old:
            changes[name] = clamp_value(name, old)[0]
    cutoff = req.trunc_cutoff  # An int, or a fractional cutoff (a keyframe blend): clamped, kept fractional.
    if cutoff is not None:
        v, note = clamp_value('trunc_cutoff', cutoff, integer=isinstance(cutoff, int | np.integer))
        if note:
            notes.append(note)
        if v != cutoff:
            changes['trunc_cutoff'] = v
    for name in ('lab_beta', 'lab_interp'):  # A wrong type is not clamped: request_errors names it.
        old = getattr(req, name)
        if not _lab_field_errors(name, old) and fix(name, old) != old:
            changes[name] = clamp_value(name, old)[0]
    if req.sel_channels not in (1, 3):
        changes['sel_channels'] = 3 if req.sel_channels >= 3 else 1
        notes.append(f'sel_channels {req.sel_channels!r} must be 1 or 3; using {changes["sel_channels"]}')
    return (req.replace(**changes) if changes else req), tuple(notes)


_FLOAT_FIELDS = ('trunc_psi', 'stylemix_weight', 'img_scale_db', 'fft_range_db', 'fft_beta')


def _is_finite(value) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError, OverflowError):
        return False


def request_errors(req: RenderRequest) -> tuple[str, ...]:
    """What makes ``req`` unrenderable regardless of the network (clamping cannot fix it); () when fine."""
    errors = []
    if len(req.w0_seeds) == 0 and getattr(req, 'ws', None) is None:
        errors.append('w0_seeds must hold at least one (seed, weight) pair, got ()')
    if any(not np.isfinite(float(w)) for _, w in req.w0_seeds):
        errors.append(f'w0_seeds weights must be finite, got {req.w0_seeds}')
    for name in _FLOAT_FIELDS:  # NaN/inf would render black or NaN images: refused, never clamped into range
        value = getattr(req, name)
        if not _is_finite(value):
            errors.append(f'{name} must be a finite number, got {value!r}')
    ws = getattr(req, 'ws', None)
    if ws is not None:
        try:
            finite = bool(np.isfinite(np.asarray(ws, dtype=np.float64)).all())
        except (TypeError, ValueError):
            finite = False
        if not finite:
            errors.append('ws must hold finite numbers only (NaN or infinity found)')
    if req.trunc_cutoff is not None and (isinstance(req.trunc_cutoff, bool) or not _is_finite(req.trunc_cutoff)):
        errors.append(f'trunc_cutoff must be None or a finite number of ws, got {req.trunc_cutoff!r}')
    if req.noise_mode not in NOISE_MODES:
        errors.append(f'noise_mode must be one of {NOISE_MODES}, got {req.noise_mode!r}')
    errors.extend(_seed_blend_errors(req))
    for name in ('lab_beta', 'lab_interp', 'lab_norm'):
        errors.extend(_lab_field_errors(name, getattr(req, name)))
    if req.input_transform is not None:
        try:
            m = np.asarray(req.input_transform, dtype=np.float64)
            ok = m.shape == (3, 3) and bool(np.isfinite(m).all()) and abs(np.linalg.det(m)) >= 1e-12
        except (TypeError, ValueError):
            ok = False
        if not ok:
            errors.append(f'input_transform must be an invertible 3x3 matrix, got {req.input_transform}')
    return tuple(errors)


def _lab_field_errors(name: str, value) -> list[str]:
    """Type errors of the spectral lab's fields (their ranges are ``REQUEST_LIMITS``'s, clamped like the others)."""
    is_number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)
    if name == 'lab_beta' and not (is_number and _is_finite(value)):
        return [f'lab_beta must be a finite number (Kaiser beta), got {value!r}']
    if name == 'lab_interp' and not (is_number and isinstance(value, int | np.integer)):
        return [f'lab_interp must be an integer (the zero-padding factor), got {value!r}']
    if name == 'lab_norm' and value is not None:
        ok = isinstance(value, tuple | list) and len(value) == 2
        ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) and _is_finite(v) for v in value)
        if not ok or not float(value[1]) > 0:
            return [
                f'lab_norm must be None or (mean, std) with finite values and std > 0, got {value!r}; '
                'use the values of `avg_spectra.py stats`'
            ]
    return []


def _seed_blend_errors(req: RenderRequest) -> list[str]:
    blend = getattr(req, 'seed_blend', 'w')
    if blend not in SEED_BLENDS:
        return [f'seed_blend must be one of {SEED_BLENDS}, got {blend!r}']
    if blend != 'slerp_z' or getattr(req, 'ws', None) is not None:
        return []
    weights = [float(w) for _, w in req.w0_seeds]
    ok = len(weights) in (1, 2) and all(w >= 0 for w in weights) and abs(sum(weights) - 1) <= SLERP_WEIGHT_TOL
    if ok and len(weights) == 1:
        ok = weights[0] == 1.0
    if not ok:
        return [
            f"seed_blend 'slerp_z' needs one seed, or two seeds with weights >= 0 summing to 1, got w0_seeds="
            f"{req.w0_seeds}; use seed_blend 'w' (the W blend) for other mixtures"
        ]
    return []


@dataclass(frozen=True)
class RenderRequest:
    """What to render. Every field has the reference GUI's default.

    Attributes:
        pkl: network source (path, ``file://`` or ``http(s)://`` URL, training-run dir); None = bundled default.
        trust: load with ``trust=True`` (executes the pickle's embedded code); default safe mode.
        device: 'auto' | 'cpu' | 'cuda' | 'cuda:N' | 'mps'.
        w0_seeds: ((seed, weight), ...) blended in W after subtracting ``w_avg`` (weights sum to 1).
        seed_blend: how ``w0_seeds`` blend: 'w' (default, the reference: ``w_avg + sum_i weight_i * (w_i -
            w_avg)``) or 'slerp_z': z = slerp(z_a, z_b, weight_b) of two seeds (weights >= 0 summing to 1; one seed
            is its own z), mapped to W once; see docs/state_files.md.
        class_idx: class for conditional networks (None: drawn per seed like the reference GUI).
        stylemix_idx: indices of ws (0..num_ws-1) replaced by those of ``stylemix_seed``.
        stylemix_seed: the second seed.
        stylemix_weight: 0..1; the chosen ws become ``(1 - a) * w + a * w_mix`` (1 = replaced, the reference).
        trunc_psi: truncation psi, -1..2 (1 = off).
        trunc_cutoff: number of leading ws that are truncated (None = all), 0..num_ws. A fractional cutoff c (a
            keyframe blend) truncates ws ``i < floor(c)`` fully and w ``floor(c)`` by the fraction ``c - floor(c)``
            (its psi becomes ``1 + (psi - 1) * frac``), so the image changes continuously with c.
        noise_mode: 'const' | 'random' | 'none' (SG2 noise inputs; SG3 ignores it).
        noise_seed: seed of ``torch.manual_seed`` before synthesis when ``noise_mode == 'random'``.
        force_fp32: disable fp16 layers (they are only used on CUDA anyway).
        layer_name: name from ``RenderResult.layers`` whose output is shown (None or 'output' = final image); a
            child of ``G.synthesis``, with ``:<i>`` appended for the i-th (i >= 1) 4-D output of a child that returns
            several (SG2 blocks return (x, img): 'b8' is x, 'b8:1' is img). Unknown names show the final image.
        sel_channels: 1 (single channel, greyscale) or 3 (three consecutive channels as RGB).
        base_channel: first displayed channel (clamped to the layer's channel count).
        img_scale_db: brightness in dB (image multiplied by 10**(db/20)); the displayed value v maps to
            uint8 clamp(v * 127.5 + 128), so the final image in [-1, 1] fills 0..255 at 0 dB.
        img_normalize: divide each displayed channel by its max |value| (the reference view: zero stays at mid-grey).
        img_center: subtract each displayed channel's mean first (a mean-centred view; before ``img_normalize``).
        fft_show: also compute the FFT view.
        fft_all: spectrum of all channels (True) or the selected ones.
        fft_range_db: displayed range, +-dB around 0 (default 50).
        fft_beta: Kaiser window beta (default 8).
        input_transform: user 3x3 rotation+translation matrix (row-major); the synthesis input gets its inverse.
        untransform: resample the output back so content stays put (undo the input transform).
        lab_spectrum: also compute the spectral lab's radial profiles of the shown layer (``RenderResult.lab``).
        lab_beta: Kaiser beta of the lab spectrum (avg_spectra's ``--beta``).
        lab_interp: zero-padding factor of the lab spectrum (avg_spectra's ``--interp``; the live view lowers it so
            that size * interp <= 1024).
        lab_norm: (mean, std) on the 0..255 scale normalising the final image like ``avg_spectra.py calc --mean
            --std`` (None: the view's own statistics; layers always use their own).
        lab_eq: also compute the live equivariance readout (PSNR against the identity-transform output).
        ws: an explicit latent, ws [num_ws, w_dim] as nested tuples of floats (e.g. a projector ``.npz`` read by
            ``engine.latent_files``); it replaces the seed blend ``w0_seeds`` (stylemix, truncation and the input
            transform still apply on top). None = use the seeds.
        return_ws: also return the rendered ws (after stylemix and truncation) in ``RenderResult.ws``.
        stamp: request number, increasing; not part of equality. ``AsyncRenderer.set_request`` keeps a nonzero stamp
            newer than the last one it sent and numbers the others itself (``AsyncRenderer.last_stamp``).
    """

    pkl: str | None = None
    trust: bool = False
    device: str = 'auto'
    w0_seeds: tuple[tuple[int, float], ...] = ((0, 1.0),)
    seed_blend: str = 'w'
    class_idx: int | None = None
    stylemix_idx: tuple[int, ...] = ()
    stylemix_seed: int = 0
    stylemix_weight: float = 1.0
    trunc_psi: float = 1.0
    trunc_cutoff: int | float | None = None
    noise_mode: str = 'const'
    noise_seed: int = 0
    force_fp32: bool = False
    layer_name: str | None = None
    sel_channels: int = 3
    base_channel: int = 0
    img_scale_db: float = 0.0
    img_normalize: bool = False
    img_center: bool = False
    fft_show: bool = False
    fft_all: bool = True
    fft_range_db: float = 50.0
    fft_beta: float = 8.0
    input_transform: tuple[tuple[float, float, float], ...] | None = None
    untransform: bool = False
    lab_spectrum: bool = False
    lab_beta: float = 8.0
    lab_interp: int = 4
    lab_norm: tuple[float, float] | None = None
    lab_eq: bool = False
    ws: tuple[tuple[float, ...], ...] | None = None
    return_ws: bool = False
    stamp: int = field(default=0, compare=False)

    def replace(self, **changes) -> RenderRequest:
        """Returns a copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready dict (used by capture sidecars and saved sessions)."""
        d = dataclasses.asdict(self)
        d.pop('stamp', None)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RenderRequest:
        """Inverse of :meth:`to_dict`; unknown keys are ignored, lists become tuples."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {}
        for k, v in d.items():
            if k not in names:
                continue
            if k == 'w0_seeds' and v is not None:
                v = tuple((int(s), float(w)) for s, w in v)
            elif k in ('input_transform', 'ws') and v is not None:
                v = tuple(tuple(float(x) for x in row) for row in v)
            elif k == 'lab_norm' and v is not None:
                v = tuple(float(x) for x in v)
            elif isinstance(v, list):
                v = tuple(v)
            kw[k] = v
        return cls(**kw)


@dataclass(frozen=True)
class LayerInfo:
    """One capturable layer: ``name`` (child of G.synthesis, or 'output'), ``shape`` [N, C, H, W], ``dtype``."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class NetInfo:
    """Facts about the loaded generator that widgets need (greying out, ranges)."""

    pkl: str
    resolved_path: str
    arch: str  # 'stylegan2' | 'stylegan3'
    img_resolution: int
    img_channels: int
    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    has_noise: bool
    has_input_transform: bool
    config: str = ''  # 'stylegan2' | 'stylegan3-t' | 'stylegan3-r' ('' when unknown)


@dataclass(frozen=True, eq=False)
class RenderResult:
    """What the renderer produced for one request.

    Attributes:
        stamp: the request's stamp.
        image: displayed image, uint8 [H, W, 3] (or None on error).
        fft: FFT view, uint8 [H, W, 3] colour-mapped over +-fft_range_db (None unless requested).
        layers: every capturable layer (in order, 'output' last), for the layer table.
        stats: {'mean': (all, sel), 'std': (all, sel), 'max': (all, sel)} of the raw shown layer output (sample 0):
            over all its channels and over the displayed ones (floats; 'max' is the largest |value|, the inf-norm).
        net: the loaded network's facts (None if nothing loaded).
        error: user-facing error text (the previous network stays usable), else None.
        refused_names: classes/globals a safe-mode load refused (the GUI asks "trust this file?").
        render_ms: time spent rendering (CUDA events on CUDA, wall clock otherwise), milliseconds.
        impl: {op name: implementation that ran}, e.g. {'filtered_lrelu': 'ref'}.
        device: the device the renderer ran on.
        layer_name: the layer actually shown ('output' for the final image; None on error).
        base_channel: the first displayed channel after clamping.
        sel_channels: the number of displayed channels (1 or 3; 0 on error).
        load_ms: time spent loading the network for this request (0 when it was cached), milliseconds.
        error_detail: the traceback behind ``error`` when there is one worth showing (for a "details" view).
        available_devices: device names the renderer can use, best first (e.g. ('cuda', 'cpu')); () if unknown.
        source: the network source of the request this result answers (``RenderRequest.pkl``; None = the bundled
            default), whether it loaded or not.
        ws: the rendered latent [num_ws, w_dim] (after stylemix and truncation) when the request asked for it
            (``RenderRequest.return_ws``), else None.
        load_failed: True when loading ``source`` failed (``error`` says why, ``net`` is None); False when it
            loaded (also when rendering then failed) and for notices that concern no load (a restarted render
            process).
        lab: the lab's outputs when the request asked (``lab_spectrum`` / ``lab_eq``), else None: one flat dict of
            plain values (``engine.lab.LabView.compute``): ``layer``; with lab_spectrum ``freq_0, slice_0, freq_45,
            slice_45, freq_r, radial`` (lists of float, cycles/pixel and dB) and the npz metadata ``image_size, beta,
            interp, num, mean, std, source``; with lab_eq (StyleGAN3, transform set) ``eq_psnr_db`` (dB; None when no
            pixel is valid), ``eq_kind`` ('int' | 'frac' | 'affine'), ``eq_valid_frac``; ``error`` when the lab
            failed (the render did not).

    ``net`` (and ``layers``, when known) are set on errors that happen after the network loaded (bad request,
    exception inside synthesis); ``net`` is None when loading failed. A widget that asked for a network knows the
    outcome from ``source`` + ``load_failed`` (loaded: ``net`` is set; failed: ``load_failed``; neither: not
    decided yet, e.g. the render process restarted).
    """

    stamp: int = 0
    image: np.ndarray | None = None
    fft: np.ndarray | None = None
    layers: tuple[LayerInfo, ...] = ()
    stats: dict = field(default_factory=dict)
    net: NetInfo | None = None
    error: str | None = None
    refused_names: tuple[str, ...] = ()
    render_ms: float = 0.0
    impl: dict = field(default_factory=dict)
    device: str = ''
    layer_name: str | None = None
    base_channel: int = 0
    sel_channels: int = 0
    load_ms: float = 0.0
    error_detail: str | None = None
    available_devices: tuple[str, ...] = ()
    source: str | None = None
    load_failed: bool = False
    lab: dict | None = None
    ws: tuple[tuple[float, ...], ...] | None = None
