"""Turns a :class:`engine.protocol.RenderRequest` into a :class:`engine.protocol.RenderResult` (no GUI needed).

The maths follows the reference visualizer (REFERENCE.md sections 3 and 6):

- latent: every seed's z (``engine.latents.z_from_seed``) is mapped with ``truncation_psi=1``; the ws are blended
  in W after subtracting ``w_avg``: ``w = w_avg + sum_i weight_i * (ws_i - w_avg)``; style mixing replaces the
  chosen ws by those of ``stylemix_seed``; truncation (StyleGAN, Karras et al. 2019, Sec. 3; StyleGAN2 Appendix B)
  lerps the first ``cutoff`` ws toward ``w_avg`` by ``psi``.
- SG3 input transform (Alias-Free GAN, Sec. 3.2 / Appendix): ``G.synthesis.input.transform`` holds the inverse of
  the user's rotation + translation for the duration of one render.
- layer view: forward hooks on the children of ``G.synthesis`` capture every 4-D output; rendering stops right
  after the selected layer (a private exception raised from the hook).
- FFT view: ``engine.spectrum.layer_spectrum_db`` mapped through :func:`engine.protocol.fft_colormap`.

Example::

    from engine.protocol import RenderRequest
    from engine.renderer import Renderer
    res = Renderer('cpu').render(RenderRequest(pkl='network.pkl', w0_seeds=((42, 1.0),), trunc_psi=0.7))
    res.image  # uint8 [H, W, 3]
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import logging
import os
import time
import traceback
from typing import Any

import numpy as np
import torch

from engine.protocol import NOISE_MODES, OUTPUT_LAYER, LayerInfo, NetInfo, RenderRequest, RenderResult, fft_colormap

logger = logging.getLogger(__name__)

# Longer than ~600 lines: the request -> result pipeline (caches, latents, hooks, views) reads best in one place.

_NUM_CACHED_PKLS = 3  # CPU copies of loaded networks (the pickle data can be large).
_NUM_CACHED_NETS = 3  # Per-device copies.
_NUM_CACHED_WS = 512  # Mapped ws [num_ws, w_dim] per (net, device, seed, class).


class _RenderError(Exception):
    """A user-facing error: its text goes to ``RenderResult.error`` without a traceback."""

    def __init__(self, message: str, refused_names: tuple[str, ...] = ()):
        super().__init__(message)
        self.refused_names = refused_names


class _CaptureDone(Exception):
    """Raised from a forward hook once the selected layer is captured (early exit)."""


@dataclasses.dataclass(frozen=True)
class LoadOutcome:
    """A network loaded by :meth:`Renderer.load_detached`: ``G`` (CPU, eval) and ``resolved`` path, or ``error``."""

    key: tuple  # (pkl, trust)
    file_state: tuple | None  # _file_state(pkl) before loading: a remembered failure is retried once it changes.
    G: Any
    resolved: str
    error: _RenderError | None
    load_ms: float


@dataclasses.dataclass
class _Net:
    """A generator ready to render on one device, plus what the renderer derived from it."""

    key: tuple  # (source, trust, device)
    G: Any
    info: NetInfo


class Renderer:
    """Renders requests with caching of networks, mapped latents and layer lists. Not thread-safe.

    Args:
        device: default device for requests whose ``device`` is 'auto': 'auto' (cuda -> mps -> cpu, see
            ``engine.devices.pick_device``), 'cpu', 'cuda', 'cuda:N' or 'mps'.
    """

    def __init__(self, device: str = 'auto'):
        self._default_device = device
        self._pkls: collections.OrderedDict[tuple, tuple[Any, str]] = collections.OrderedDict()
        self._nets: collections.OrderedDict[tuple, _Net] = collections.OrderedDict()
        self._load_errors: dict[tuple, tuple[Any, _RenderError]] = {}
        self._ws: collections.OrderedDict[tuple, torch.Tensor] = collections.OrderedDict()
        self._layers: dict[tuple, tuple[LayerInfo, ...]] = {}
        self._impl: dict[str, dict] = {}
        self._luts: dict[str, torch.Tensor] = {}
        self._adopted_errors: dict[tuple, _RenderError] = {}  # Failed detached loads, reported by the next render.
        self._detached_load_ms: dict[tuple, float] = {}
        self._available_devices: tuple[str, ...] | None = None

    # ------------------------------------------------------------------------------------------------------------
    # Public API.

    def render(self, req: RenderRequest) -> RenderResult:
        """Renders one request. Never raises for user or model errors.

        Args:
            req: what to render (see :class:`engine.protocol.RenderRequest`).

        Returns:
            The result; on failure ``error`` holds a one-line message (``error_detail`` the traceback for
            unexpected errors), ``refused_names`` the globals a safe-mode load refused, and the previously loaded
            networks stay cached and usable. Errors after the network loaded (bad request, exception inside
            synthesis) carry its ``net`` and known ``layers``; load failures have ``net=None``. Every result lists
            ``available_devices``.
        """
        device_name = ''
        load_ms = 0.0
        net: _Net | None = None
        try:
            device = self._pick_device(req.device)
            device_name = str(device)
            t0 = time.perf_counter()
            net, was_cached = self._get_net(req.pkl, req.trust, device)
            if not was_cached:
                load_ms = (time.perf_counter() - t0) * 1e3 + self._detached_load_ms.pop((req.pkl, bool(req.trust)), 0.0)
            res = dataclasses.replace(self._render_net(net, req, device), load_ms=load_ms)
        except _RenderError as e:
            res = self._error_result(req, net, str(e), None, refused_names=e.refused_names)
        except Exception as e:  # Anything from inside the model (user code in a trusted pickle, OOM, ...).
            logger.exception('rendering failed')
            msg = f'Rendering failed: {type(e).__name__}: {e}'.strip()
            res = self._error_result(req, net, msg, traceback.format_exc())
        return dataclasses.replace(res, device=device_name, load_ms=load_ms, available_devices=self._devices())

    def pending_load(self, req: RenderRequest) -> tuple[str | None, bool] | None:
        """What :meth:`render` would load from disk for ``req`` before rendering.

        Args:
            req: a request.

        Returns:
            The load key ``(pkl, trust)`` for :meth:`load_detached` when the network is neither cached nor a
            remembered failure, else None (also for an invalid device: :meth:`render` reports it).
        """
        try:
            device = self._pick_device(req.device)
        except _RenderError:
            return None
        key = (req.pkl, bool(req.trust))
        if (*key, str(device)) in self._nets or key in self._pkls or key in self._adopted_errors:
            return None
        failed = self._load_errors.get(key)
        file_state = _file_state(req.pkl)
        if failed is not None and failed[0] == file_state and file_state is not None:
            return None
        return key

    @staticmethod
    def load_detached(key: tuple[str | None, bool]) -> LoadOutcome:
        """Loads a network without touching any renderer state (safe in another thread; see :meth:`adopt`).

        Args:
            key: ``(pkl, trust)`` from :meth:`pending_load`.

        Returns:
            The generator on the CPU, or the user-facing error.

        Building the network draws from torch's global CPU RNG inside ``fork_rng``; a ``noise_mode='random'``
        render running at the same time in another thread may therefore get a different noise draw once.
        """
        source, trust = key
        file_state = _file_state(source)
        t0 = time.perf_counter()
        try:
            with torch.random.fork_rng(devices=[]):  # Constructing modules draws random numbers: keep the user's.
                G, resolved = _load_generator(source, bool(trust))
            return LoadOutcome(key, file_state, G, resolved, None, (time.perf_counter() - t0) * 1e3)
        except _RenderError as e:
            return LoadOutcome(key, file_state, None, '', e, (time.perf_counter() - t0) * 1e3)
        except (Exception, SystemExit) as e:  # Unexpected, or sys.exit() in a trusted pickle's code: report it.
            err = _RenderError(f'Could not load {source!r}: {type(e).__name__}: {e}')
            return LoadOutcome(key, file_state, None, '', err, (time.perf_counter() - t0) * 1e3)

    def adopt(self, outcome: LoadOutcome) -> None:
        """Puts the outcome of :meth:`load_detached` into the caches, so that :meth:`render` uses it."""
        if outcome.error is not None:
            self._load_errors[outcome.key] = (outcome.file_state, outcome.error)
            self._adopted_errors[outcome.key] = outcome.error
            return
        self._load_errors.pop(outcome.key, None)
        self._adopted_errors.pop(outcome.key, None)
        self._pkls[outcome.key] = (outcome.G, outcome.resolved)
        self._pkls.move_to_end(outcome.key)
        self._detached_load_ms[outcome.key] = outcome.load_ms
        while len(self._pkls) > _NUM_CACHED_PKLS:
            old, _ = self._pkls.popitem(last=False)
            self._detached_load_ms.pop(old, None)

    def _error_result(
        self,
        req: RenderRequest,
        net: _Net | None,
        error: str,
        error_detail: str | None,
        refused_names: tuple[str, ...] = (),
    ) -> RenderResult:
        layers = self._layers.get((net.key, bool(req.force_fp32)), ()) if net is not None else ()
        return RenderResult(
            stamp=req.stamp,
            error=error,
            error_detail=error_detail,
            refused_names=refused_names,
            net=net.info if net is not None else None,
            layers=layers,
        )

    def _devices(self) -> tuple[str, ...]:
        if self._available_devices is None:
            from engine import devices

            try:
                self._available_devices = tuple(str(d) for d in devices.available_devices())
            except Exception as e:  # A broken driver must not stop rendering.
                logger.warning('available_devices() failed: %s', e)
                self._available_devices = ()
        return self._available_devices

    # ------------------------------------------------------------------------------------------------------------
    # Devices and network loading.

    def _pick_device(self, name: str) -> torch.device:
        from engine import devices

        try:
            return devices.pick_device(self._default_device if name in (None, '', 'auto') else name)
        except ValueError as e:
            raise _RenderError(str(e)) from e

    def _get_net(self, source: str | None, trust: bool, device: torch.device) -> tuple[_Net, bool]:
        key = (source, bool(trust), str(device))
        net = self._nets.get(key)
        if net is not None:
            self._nets.move_to_end(key)
            return net, True
        G_cpu, resolved = self._load_pkl(source, bool(trust))
        G = G_cpu if device.type == 'cpu' else copy.deepcopy(G_cpu).to(device)
        G.eval().requires_grad_(False)
        net = _Net(key=key, G=G, info=_net_info(G, source, resolved))
        self._nets[key] = net
        while len(self._nets) > _NUM_CACHED_NETS:
            old_key, _ = self._nets.popitem(last=False)
            self._forget(old_key)
        return net, False

    def _forget(self, net_key: tuple) -> None:
        for cache in (self._ws, self._layers):
            for k in [k for k in cache if k[0] == net_key]:
                del cache[k]

    def _load_pkl(self, source: str | None, trust: bool) -> tuple[Any, str]:
        """Loads (or takes from the cache) G_ema on the CPU; returns it with the resolved path."""
        key = (source, trust)
        if key in self._pkls:
            self._pkls.move_to_end(key)
            return self._pkls[key]
        adopted = self._adopted_errors.pop(key, None)
        if adopted is not None:
            raise adopted
        # A failed load is remembered while the file is unchanged (the GUI asks again every frame it changes).
        failed = self._load_errors.get(key)
        if failed is not None and failed[0] == _file_state(source) and failed[0] is not None:
            raise failed[1]
        outcome = self.load_detached(key)
        self.adopt(outcome)
        self._detached_load_ms.pop(key, None)  # render() timed this load itself.
        if outcome.error is not None:
            self._adopted_errors.pop(key, None)
            raise outcome.error
        return outcome.G, outcome.resolved

    # ------------------------------------------------------------------------------------------------------------
    # Rendering.

    def _render_net(self, net: _Net, req: RenderRequest, device: torch.device) -> RenderResult:
        G = net.G
        _check_request(req, net.info)
        timer = _Timer(device)
        with torch.no_grad():
            ws = self._make_ws(net, req, device)  # [1, num_ws, w_dim]
            layer_name = req.layer_name if req.layer_name not in (None, '') else OUTPUT_LAYER
            layers_key = (net.key, bool(req.force_fp32))
            known_layers = self._layers.get(layers_key)
            known_names = {l.name for l in known_layers} if known_layers is not None else set()
            if known_layers is not None and layer_name not in known_names:
                layer_name = OUTPUT_LAYER  # Unknown (e.g. from another network): show the final image.
            early_exit = known_layers is not None and layer_name != OUTPUT_LAYER
            captured = self._run_synthesis(G, ws, req, net.info, capture=layer_name if early_exit else None)
            if not early_exit:
                self._layers[layers_key] = tuple(
                    LayerInfo(name=n, shape=tuple(int(s) for s in x.shape), dtype=str(x.dtype).replace('torch.', ''))
                    for n, x in captured.items()
                )
            if layer_name not in captured:  # Layer list was just built and the request names another layer.
                layer_name = OUTPUT_LAYER
            x = captured[layer_name][0].to(torch.float32)  # [C, H, W], sample 0
            if req.untransform and net.info.has_input_transform and req.input_transform is not None:
                x = _untransform(x, _user_transform(req.input_transform), _layer_extent(G, layer_name, x.shape[-1]))
            view = self._make_view(x, req, device)
        render_ms = timer.elapsed_ms()
        return RenderResult(
            stamp=req.stamp,
            image=view['image'],
            fft=view['fft'],
            layers=self._layers[layers_key],
            stats=view['stats'],
            net=net.info,
            render_ms=render_ms,
            impl=self._impl_report(device),
            device=str(device),
            layer_name=layer_name,
            base_channel=view['base_channel'],
            sel_channels=view['sel_channels'],
        )

    def _make_ws(self, net: _Net, req: RenderRequest, device: torch.device) -> torch.Tensor:
        """The latent of a request, [1, num_ws, w_dim] float32 (REFERENCE section 6; see the module docstring)."""
        G = net.G
        info = net.info
        seeds = [int(s) for s, _ in req.w0_seeds]
        weights = [float(w) for _, w in req.w0_seeds]
        mix = [i for i in req.stylemix_idx if 0 <= int(i) < info.num_ws]
        all_seeds = seeds + ([int(req.stylemix_seed)] if mix else [])
        mapped = self._map_seeds(net, all_seeds, req.class_idx, device)  # seed -> [num_ws, w_dim]
        w_avg = G.mapping.w_avg.to(device=device, dtype=torch.float32)  # [w_dim]

        # Blend in W relative to w_avg.
        w = w_avg.clone()  # [num_ws, w_dim] after broadcasting
        for seed, weight in zip(seeds, weights):
            w = w + weight * (mapped[seed] - w_avg)
        # Style mixing: chosen ws come from the second seed.
        if mix:
            w = w.clone()
            w[mix] = mapped[int(req.stylemix_seed)][mix]
        # Truncation trick: lerp the first `cutoff` ws toward w_avg.
        cutoff = info.num_ws if req.trunc_cutoff is None else max(0, min(int(req.trunc_cutoff), info.num_ws))
        if req.trunc_psi != 1 and cutoff > 0:
            w = w.clone()
            w[:cutoff] = w_avg + (w[:cutoff] - w_avg) * float(req.trunc_psi)
        return w.unsqueeze(0)

    def _map_seeds(
        self, net: _Net, seeds: list[int], class_idx: int | None, device: torch.device
    ) -> dict[int, torch.Tensor]:
        """Maps every distinct seed once (cached): seed -> ws [num_ws, w_dim] float32 with truncation_psi=1."""
        from engine import latents

        G = net.G
        info = net.info
        out: dict[int, torch.Tensor] = {}
        todo: list[tuple[int, int | None, tuple]] = []
        for seed in dict.fromkeys(seeds):
            try:
                cls = None
                if info.c_dim > 0:
                    cls = (
                        int(class_idx)
                        if class_idx is not None
                        else latents.class_from_seed(seed, info.c_dim, info.z_dim)
                    )
            except ValueError as e:
                raise _RenderError(str(e)) from e
            key = (net.key, seed, cls)
            if key in self._ws:
                self._ws.move_to_end(key)
                out[seed] = self._ws[key]
            else:
                todo.append((seed, cls, key))
        if todo:
            try:
                z = np.concatenate([latents.z_from_seed(seed, info.z_dim) for seed, _, _ in todo])  # [N, z_dim]
            except ValueError as e:
                raise _RenderError(str(e)) from e
            c = torch.zeros([len(todo), info.c_dim], dtype=torch.float32, device=device)  # [N, c_dim] one-hot
            for i, (_, cls, _) in enumerate(todo):
                if cls is not None:
                    c[i, cls] = 1
            ws = G.mapping(torch.from_numpy(z).to(device), c, truncation_psi=1).to(torch.float32)  # [N, L, D]
            for i, (seed, _, key) in enumerate(todo):
                out[seed] = self._ws[key] = ws[i]
            while len(self._ws) > _NUM_CACHED_WS:
                self._ws.popitem(last=False)
        return out

    def _run_synthesis(
        self, G: Any, ws: torch.Tensor, req: RenderRequest, info: NetInfo, capture: str | None
    ) -> dict[str, torch.Tensor]:
        """Runs G.synthesis capturing every child's 4-D outputs ({name: [N, C, H, W]}, 'output' last unless the
        run stopped early right after the layer named ``capture``)."""
        captured: dict[str, torch.Tensor] = {}

        def make_hook(name):
            def hook(_module, _inputs, outputs):
                outs = outputs if isinstance(outputs, (tuple, list)) else [outputs]
                outs = [o for o in outs if isinstance(o, torch.Tensor) and o.ndim == 4]
                for i, o in enumerate(outs):
                    out_name = name if i == 0 else f'{name}:{i}'
                    captured[out_name] = o
                    if out_name == capture:
                        raise _CaptureDone

            return hook

        handles = [m.register_forward_hook(make_hook(n)) for n, m in G.synthesis.named_children()]
        transform = G.synthesis.input.transform if info.has_input_transform else None
        saved = transform.clone() if transform is not None else None
        try:
            if transform is not None and req.input_transform is not None:
                # The input layer takes the inverse of the user's transform (REFERENCE section 3).
                m = np.linalg.inv(_user_transform(req.input_transform))
                transform.copy_(torch.from_numpy(m).to(transform))
            with torch.random.fork_rng(devices=_rng_devices(ws.device), device_type=ws.device.type):
                if req.noise_mode == 'random':
                    torch.manual_seed(int(req.noise_seed))
                img = G.synthesis(ws, noise_mode=req.noise_mode, force_fp32=bool(req.force_fp32))
            captured[OUTPUT_LAYER] = img
        except _CaptureDone:
            pass
        finally:
            for h in handles:
                h.remove()
            if transform is not None and saved is not None:
                transform.copy_(saved)
        return captured

    def _make_view(self, x: torch.Tensor, req: RenderRequest, device: torch.device) -> dict:
        """Displayed image, stats and FFT view of one layer output x [C, H, W] float32."""
        num_channels = x.shape[0]
        sel_channels = 3 if req.sel_channels >= 3 and num_channels >= 3 else 1
        base = max(min(int(req.base_channel), num_channels - sel_channels), 0)
        xs = x[base : base + sel_channels]  # [sel, H, W]

        # Stats over all vs the displayed channels, one device->host transfer.
        stats_t = torch.stack([x.mean(), xs.mean(), _std(x), _std(xs), x.abs().amax(), xs.abs().amax()]).cpu().tolist()
        stats = {'mean': tuple(stats_t[0:2]), 'std': tuple(stats_t[2:4]), 'max': tuple(stats_t[4:6])}

        img = xs
        if req.img_center:  # Mean-centred view (our option).
            img = img - img.mean(dim=[1, 2], keepdim=True)
        if req.img_normalize:  # Reference view: each channel over its max |value|, 0 stays at mid-grey.
            img = img / img.abs().amax(dim=[1, 2], keepdim=True).clamp(min=1e-8)
        img = img * (10 ** (float(req.img_scale_db) / 20))
        img_u8 = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)  # [sel, H, W]
        if sel_channels == 1:
            img_u8 = img_u8.expand(3, -1, -1)
        image = img_u8.permute(1, 2, 0).contiguous().cpu().numpy()  # [H, W, 3]

        fft = None
        if req.fft_show:
            from engine.spectrum import layer_spectrum_db

            spec_db = layer_spectrum_db(x if req.fft_all else xs, beta=float(req.fft_beta))  # [H, W] dB
            lut = self._lut(device)  # [256, 3] uint8
            t = (spec_db.to(torch.float32) / max(float(req.fft_range_db), 1e-6) + 1) / 2  # [-range, +range] -> [0, 1]
            idx = (t.nan_to_num(0.0) * (lut.shape[0] - 1)).round().clamp(0, lut.shape[0] - 1).to(torch.int64)
            fft = lut[idx].cpu().numpy()  # [H, W, 3]
        return dict(image=image, fft=fft, stats=stats, base_channel=base, sel_channels=sel_channels)

    def _lut(self, device: torch.device) -> torch.Tensor:
        key = str(device)
        if key not in self._luts:
            self._luts[key] = torch.from_numpy(fft_colormap(256)).to(device)
        return self._luts[key]

    def _impl_report(self, device: torch.device) -> dict:
        key = str(device)
        if key not in self._impl:
            try:
                from torch_utils import ops

                self._impl[key] = dict(ops.impl_report(device, torch.float32))
            except Exception as e:  # A missing/broken ops report must not stop rendering.
                logger.warning('impl_report() failed: %s', e)
                self._impl[key] = {}
        return self._impl[key]


# ----------------------------------------------------------------------------------------------------------------
# Helpers.


def _load_generator(source: str | None, trust: bool) -> tuple[Any, str]:
    """Loads G_ema (CPU) from a source; every failure becomes a _RenderError with a one-line message."""
    from engine import loading

    where = 'the bundled default network' if source is None else repr(source)
    try:
        path = loading.default_network_path() if source is None else loading.resolve_source(source)
        data = loading.load_network_pkl(path, trust=trust)
    except loading.UnsafePickleError as e:
        raise _RenderError(str(e), refused_names=tuple(str(n) for n in e.names)) from e
    except loading.LoadError as e:
        raise _RenderError(str(e)) from e
    except Exception as e:  # Code run by a trusted pickle, unexpected formats, I/O errors.
        raise _RenderError(f'Could not load {where}: {type(e).__name__}: {e}') from e
    G = data.get('G_ema', data.get('G')) if isinstance(data, dict) else None
    if not (isinstance(G, torch.nn.Module) and hasattr(G, 'mapping') and hasattr(G, 'synthesis')):
        raise _RenderError(f'Could not load {where}: it holds no generator (expected a dict with a G_ema network)')
    return G, str(path)


def _file_state(source: str | None) -> tuple | None:
    """(mtime, size) of a local file source, to notice that a file that failed to load has changed."""
    if source is None or ('://' in source and not source.startswith('file://')):
        return None  # The default network and URLs: no remembered failures.
    path = source[len('file://') :] if source.startswith('file://') else source
    try:
        st = os.stat(path)
    except OSError:
        return ('missing',)
    return (st.st_mtime_ns, st.st_size)


def _net_info(G: Any, source: str | None, resolved: str) -> NetInfo:
    inp = getattr(G.synthesis, 'input', None)
    has_transform = isinstance(getattr(inp, 'transform', None), torch.Tensor)
    has_noise = any(name.endswith('noise_const') for name, _ in G.synthesis.named_buffers())
    return NetInfo(
        pkl='' if source is None else str(source),
        resolved_path=resolved,
        arch='stylegan3' if has_transform else 'stylegan2',
        img_resolution=int(G.img_resolution),
        img_channels=int(G.img_channels),
        z_dim=int(G.z_dim),
        c_dim=int(G.c_dim),
        w_dim=int(G.w_dim),
        num_ws=int(G.num_ws),
        has_noise=has_noise,
        has_input_transform=has_transform,
    )


def _check_request(req: RenderRequest, info: NetInfo) -> None:
    """User errors in a request -> _RenderError (one line, the fix)."""
    if len(req.w0_seeds) == 0:
        raise _RenderError('render(): w0_seeds must hold at least one (seed, weight) pair, got ()')
    if req.noise_mode not in NOISE_MODES:
        raise _RenderError(f'render(): noise_mode must be one of {NOISE_MODES}, got {req.noise_mode!r}')
    if info.c_dim > 0 and req.class_idx is not None and not 0 <= int(req.class_idx) < info.c_dim:
        raise _RenderError(
            f'render(): class_idx must be in 0..{info.c_dim - 1} for this network, got {req.class_idx} '
            '(or None to draw a class per seed)'
        )
    if req.input_transform is not None:
        m = np.asarray(req.input_transform, dtype=np.float64)
        if m.shape != (3, 3) or not np.isfinite(m).all() or abs(np.linalg.det(m)) < 1e-12:
            raise _RenderError(f'render(): input_transform must be an invertible 3x3 matrix, got {req.input_transform}')


def _user_transform(m) -> np.ndarray:
    return np.asarray(m, dtype=np.float64).reshape(3, 3)


def _rng_devices(device: torch.device) -> list:
    if device.type == 'cuda':
        return [device.index if device.index is not None else torch.cuda.current_device()]
    return []


def _std(x: torch.Tensor) -> torch.Tensor:
    return x.std() if x.numel() > 1 else torch.zeros((), dtype=x.dtype, device=x.device)


def _layer_extent(G: Any, layer_name: str, width: int) -> float:
    """Width of a layer's output in image units (the final image spans 1): SG3 layers carry margins and their own
    sampling rate (Alias-Free GAN, Sec. 3.1 and Appendix F), extent = size / sampling_rate."""
    if layer_name == OUTPUT_LAYER:
        return 1.0
    module = getattr(G.synthesis, layer_name.split(':')[0], None)
    for rate_name in ('out_sampling_rate', 'sampling_rate'):
        rate = getattr(module, rate_name, None)
        if rate is not None:
            try:
                return float(width) / float(rate)
            except (TypeError, ValueError):
                pass
    return float(width) / float(G.img_resolution)


def _untransform(x: torch.Tensor, user_m: np.ndarray, extent: float) -> torch.Tensor:
    """Resamples a layer output x [C, H, W] so its content is where it would be without the user transform.

    The input layer gets T^-1 (T = user rotation + translation), so the output shows out'(p) = out(T^-1 p) with p
    in image units (centre 0, the image spans 1). Sampling out' at T p gives back out(p), band-limited to what both
    pixel grids hold (``engine.resample.bandlimited_affine``: 4x upsampling, Lanczos sinc low-passes of the input
    and the transformed output grid, sampling); zero outside the layer.
    """
    from engine import resample

    m_px = resample.centred_to_pixels(user_m, x.shape[-1], x.shape[-2], extent=extent)
    return resample.bandlimited_affine(x.unsqueeze(0), m_px)[0][0]


class _Timer:
    """Wall time of one render: CUDA events on CUDA, perf_counter after a sync elsewhere."""

    def __init__(self, device: torch.device):
        self.device = device
        if device.type == 'cuda':
            self.start = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)
            self.start.record(torch.cuda.current_stream(device))
        else:
            self.t0 = time.perf_counter()

    def elapsed_ms(self) -> float:
        if self.device.type == 'cuda':
            self.end.record(torch.cuda.current_stream(self.device))
            self.end.synchronize()
            return float(self.start.elapsed_time(self.end))
        if self.device.type == 'mps':
            torch.mps.synchronize()
        return (time.perf_counter() - self.t0) * 1e3


__all__ = ['LoadOutcome', 'Renderer']
