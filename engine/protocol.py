"""The only contract between the GUI and the renderer: frozen request/result dataclasses.

Each GUI frame, widgets fill their part of a :class:`RenderRequest`; the renderer (in this process or in a separate
render process, see ``engine.async_renderer``) turns it into a :class:`RenderResult`. Both are plain data: picklable,
free of torch tensors and of GUI objects, so this module imports only the standard library and numpy.

Conventions follow the reference visualizer (REFERENCE.md section 6): the latent is a weighted blend of seeds in W,
truncation lerps toward ``w_avg``, the layer view shows ``sel_channels`` consecutive channels starting at
``base_channel``, the FFT view is in dB over ``+-fft_range_db``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

NOISE_MODES = ('const', 'random', 'none')


@dataclass(frozen=True)
class RenderRequest:
    """What to render. Every field has the reference GUI's default.

    Attributes:
        pkl: network source (path, ``file://`` or ``http(s)://`` URL, training-run dir); None = bundled default.
        trust: load with ``trust=True`` (executes the pickle's embedded code); default safe mode.
        device: 'auto' | 'cpu' | 'cuda' | 'cuda:N' | 'mps'.
        w0_seeds: ((seed, weight), ...) blended in W after subtracting ``w_avg`` (weights sum to 1).
        class_idx: class for conditional networks (None: drawn per seed like the reference GUI).
        stylemix_idx: indices of ws (0..num_ws-1) replaced by those of ``stylemix_seed``.
        stylemix_seed: the second seed.
        trunc_psi: truncation psi, -1..2 (1 = off).
        trunc_cutoff: number of leading ws that are truncated (None = all), 0..num_ws.
        noise_mode: 'const' | 'random' | 'none' (SG2 noise inputs; SG3 ignores it).
        noise_seed: seed of ``torch.manual_seed`` before synthesis when ``noise_mode == 'random'``.
        force_fp32: disable fp16 layers (they are only used on CUDA anyway).
        layer_name: child of ``G.synthesis`` whose output is shown (None = final image).
        sel_channels: 1 (single channel, greyscale) or 3 (three consecutive channels as RGB).
        base_channel: first displayed channel.
        img_scale_db: brightness in dB (image multiplied by 10**(db/20)).
        img_normalize: normalise the displayed channels to zero mean / unit std first.
        fft_show: also compute the FFT view.
        fft_all: spectrum of all channels (True) or the selected ones.
        fft_range_db: displayed range, +-dB around 0 (default 50).
        fft_beta: Kaiser window beta (default 8).
        input_transform: user 3x3 rotation+translation matrix (row-major); the synthesis input gets its inverse.
        untransform: resample the output back so content stays put (undo the input transform).
        stamp: monotonically increasing request number; not part of equality.
    """

    pkl: str | None = None
    trust: bool = False
    device: str = 'auto'
    w0_seeds: tuple[tuple[int, float], ...] = ((0, 1.0),)
    class_idx: int | None = None
    stylemix_idx: tuple[int, ...] = ()
    stylemix_seed: int = 0
    trunc_psi: float = 1.0
    trunc_cutoff: int | None = None
    noise_mode: str = 'const'
    noise_seed: int = 0
    force_fp32: bool = False
    layer_name: str | None = None
    sel_channels: int = 3
    base_channel: int = 0
    img_scale_db: float = 0.0
    img_normalize: bool = False
    fft_show: bool = False
    fft_all: bool = True
    fft_range_db: float = 50.0
    fft_beta: float = 8.0
    input_transform: tuple[tuple[float, float, float], ...] | None = None
    untransform: bool = False
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
            elif k == 'input_transform' and v is not None:
                v = tuple(tuple(float(x) for x in row) for row in v)
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


@dataclass(frozen=True, eq=False)
class RenderResult:
    """What the renderer produced for one request.

    Attributes:
        stamp: the request's stamp.
        image: displayed image, uint8 [H, W, 3] (or None on error).
        fft: FFT view, uint8 [H, W, 3] colour-mapped over +-fft_range_db (None unless requested).
        layers: every capturable layer (in order), for the layer table.
        stats: {'mean': (all, sel), 'std': (all, sel), 'max': (all, sel)} of the raw selected layer output.
        net: the loaded network's facts (None if nothing loaded).
        error: user-facing error text (the previous network stays usable), else None.
        refused_names: classes/globals a safe-mode load refused (the GUI asks "trust this file?").
        render_ms: time spent rendering (CUDA events on CUDA, wall clock otherwise), milliseconds.
        impl: {op name: implementation that ran}, e.g. {'filtered_lrelu': 'ref'}.
        device: the device the renderer ran on.
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
