"""Owns the render pipeline: a :class:`engine.protocol.RenderRequest` -> latent -> synthesis with layer capture ->
the displayed image, stats and FFT view in a :class:`engine.protocol.RenderResult` (no GUI needed). Networks come
from ``engine.net_cache`` (loading, caching, failures); the render process around it is ``engine.async_renderer``.

The maths follows the reference visualizer (docs/compatibility.md §3, §6):

- latent: every seed's z (``engine.latents.z_from_seed``) is mapped with ``truncation_psi=1``; the ws are blended
  in W after subtracting ``w_avg``: ``w = w_avg + sum_i weight_i * (ws_i - w_avg)`` (or, with ``seed_blend``
  'slerp_z', the two seeds' z are slerped and mapped once); style mixing replaces the chosen ws by those of
  ``stylemix_seed`` (or lerps toward them by ``stylemix_weight``); truncation (StyleGAN, Karras et al. 2019, Sec. 3;
  StyleGAN2 Appendix B) lerps the first ``cutoff`` ws toward ``w_avg`` by ``psi`` (a fractional cutoff truncates
  the next w by the fraction).
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
import dataclasses
import logging
import time
import traceback
from typing import Any

import numpy as np
import torch

from engine.net_cache import LoadedNet, NetCache, NetLoadError
from engine.protocol import (
    OUTPUT_LAYER,
    LayerInfo,
    NetInfo,
    RenderRequest,
    RenderResult,
    clamp_request,
    fft_colormap,
    request_errors,
)

logger = logging.getLogger(__name__)

_NUM_CACHED_WS = 512  # Mapped ws [num_ws, w_dim] per (net, device, seed, class).


class _RenderError(Exception):
    """A user-facing error: its text goes to ``RenderResult.error`` without a traceback."""


class _CaptureDone(Exception):
    """Raised from a forward hook once the selected layer is captured (early exit)."""


class Renderer:
    """Renders requests: latents, synthesis with layer capture, the displayed views. Not thread-safe.

    Networks come from an :class:`engine.net_cache.NetCache` (loading, caching, failures); the renderer caches only
    what it derives from a network (mapped ws, layer lists, colour tables).

    Args:
        device: default device for requests whose ``device`` is 'auto': 'auto' (cuda -> mps -> cpu, see
            ``engine.devices.pick_device``), 'cpu', 'cuda', 'cuda:N' or 'mps'.
        net_cache: where networks come from (default: a new :class:`engine.net_cache.NetCache`).
    """

    def __init__(self, device: str = 'auto', *, net_cache: NetCache | None = None):
        self._default_device = device
        self.net_cache = net_cache if net_cache is not None else NetCache(on_evict=self._forget)
        self._ws: collections.OrderedDict[tuple, torch.Tensor] = collections.OrderedDict()
        self._layers: dict[tuple, tuple[LayerInfo, ...]] = {}
        self._impl: dict[tuple[str, int], dict] = {}
        self._luts: dict[str, torch.Tensor] = {}
        self._available_devices: tuple[str, ...] | None = None
        self._lab: Any = None  # engine.lab.LabView, made on first use (the lab imports the metrics lazily).

    # ------------------------------------------------------------------------------------------------------------
    # Public API.

    def render(self, req: RenderRequest) -> RenderResult:
        """Renders one request, waiting for its network to load. Never raises for user or model errors.

        Args:
            req: what to render (see :class:`engine.protocol.RenderRequest`).

        Returns:
            The result; on failure ``error`` holds a one-line message (``error_detail`` the traceback for
            unexpected errors), ``refused_names`` the globals a safe-mode load refused, ``load_failed`` whether the
            network failed to load, and the previously loaded networks stay cached and usable. Errors after the
            network loaded (bad request, exception inside synthesis) carry its ``net`` and known ``layers``. Every
            result names its ``source`` and lists ``available_devices``.
        """
        res = self._render(req, wait=True)
        assert res is not None
        return res

    def try_render(self, req: RenderRequest) -> RenderResult | None:
        """Like :meth:`render`, but returns None at once while the request's network is still loading (the load
        goes on in a background thread; call again later). This is what the render loop calls."""
        return self._render(req, wait=False)

    def prefetch(self, req: RenderRequest) -> None:
        """Starts loading ``req``'s network onto the CPU in the background (a spare render process warming up)."""
        self.net_cache.prefetch(req.pkl, bool(req.trust))

    def _render(self, req: RenderRequest, wait: bool) -> RenderResult | None:
        device_name = ''
        load_ms = 0.0
        net: LoadedNet | None = None
        try:
            device = self._pick_device(req.device)
            device_name = str(device)
            if wait:
                net, load_ms = self.net_cache.get(req.pkl, bool(req.trust), device)
            else:
                status = self.net_cache.lookup(req.pkl, bool(req.trust), device)
                if status.failure is not None:
                    raise NetLoadError(status.failure)
                if status.net is None:
                    return None
                net, load_ms = status.net, status.load_ms
            res = self._render_net(net, req, device)
        except NetLoadError as e:
            f = e.failure
            res = RenderResult(
                stamp=req.stamp, error=f.message, error_detail=f.detail, refused_names=f.refused_names, load_failed=True
            )
        except _RenderError as e:
            res = self._error_result(req, net, str(e), None)
        except Exception as e:  # Anything from inside the model (user code in a trusted pickle, OOM, ...).
            logger.exception('rendering failed')
            msg = f'Rendering failed: {type(e).__name__}: {e}'.strip()
            res = self._error_result(req, net, msg, traceback.format_exc())
        return dataclasses.replace(
            res, device=device_name, load_ms=load_ms, available_devices=self._devices(), source=req.pkl
        )

    def _error_result(self, req: RenderRequest, net: LoadedNet | None, error: str, detail: str | None) -> RenderResult:
        layers = self._layers.get((net.key, bool(req.force_fp32)), ()) if net is not None else ()
        return RenderResult(
            stamp=req.stamp,
            error=error,
            error_detail=detail,
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

    def _pick_device(self, name: str) -> torch.device:
        from engine import devices

        try:
            return devices.pick_device(self._default_device if name in (None, '', 'auto') else name)
        except ValueError as e:
            raise _RenderError(str(e)) from e

    def _forget(self, net_key: tuple) -> None:
        """Drops what was derived from a per-device network the cache let go."""
        for cache in (self._ws, self._layers):
            for k in [k for k in cache if k[0] == net_key]:
                del cache[k]

    # ------------------------------------------------------------------------------------------------------------
    # Rendering.

    def _render_net(self, net: LoadedNet, req: RenderRequest, device: torch.device) -> RenderResult:
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
            x_raw = captured[layer_name][0].to(torch.float32)  # [C, H, W], sample 0
            extent = _layer_extent(G, layer_name, x_raw.shape[-1])
            x = x_raw
            if req.untransform and net.info.has_input_transform and req.input_transform is not None:
                x = _untransform(x, _user_transform(req.input_transform), extent)
            view = self._make_view(x, req, device)
            lab = self._lab_outputs(net, req, ws, layer_name, x_raw, x, extent)
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
            lab=lab,
            ws=tuple(tuple(float(v) for v in row) for row in ws[0].cpu().tolist()) if req.return_ws else None,
        )

    def _lab_outputs(
        self, net: LoadedNet, req: RenderRequest, ws: torch.Tensor, layer_name: str, x_raw, x_view, extent: float
    ) -> dict | None:
        """The spectral / equivariance lab's part of a result (``engine.lab.LabView``); a failure there is reported
        in ``lab['error']`` and does not fail the render."""
        if not (req.lab_spectrum or req.lab_eq):
            return None
        from engine import lab

        if self._lab is None:
            self._lab = lab.LabView()

        def render_identity() -> torch.Tensor:
            capture = None if layer_name == OUTPUT_LAYER else layer_name
            captured = self._run_synthesis(net.G, ws, req.replace(input_transform=None), net.info, capture=capture)
            return captured[layer_name][0].to(torch.float32)

        try:
            return self._lab.compute(
                req, net_key=net.key, has_input_transform=net.info.has_input_transform, layer=layer_name,
                x_raw=x_raw, x_view=x_view, extent=extent, render_identity=render_identity,
            )  # fmt: skip
        except (ValueError, lab.JobError) as e:
            return {'layer': layer_name, 'error': str(e)}

    # ------------------------------------------------------------------------------------------------------------
    # Job context (engine.jobs): what long jobs in the render process use.

    def _prepared_net(self, req: RenderRequest) -> tuple[LoadedNet, torch.device]:
        from engine.jobs import JobError

        try:
            device = self._pick_device(req.device)
            net, _ = self.net_cache.get(req.pkl, bool(req.trust), device)
            _check_request(req, net.info)
        except NetLoadError as e:
            raise JobError(e.failure.message) from e
        except _RenderError as e:
            raise JobError(str(e)) from e
        return net, device

    def prepare(self, req: RenderRequest) -> tuple[Any, NetInfo, torch.device]:
        """The request's network on its device, loading it if needed (blocks): (G, NetInfo, device).

        Raises:
            engine.jobs.JobError: the network cannot be loaded or the request is invalid (one line, the fix).
        """
        net, device = self._prepared_net(req)
        return net.G, net.info, device

    def synthesize(self, G: Any, ws: torch.Tensor, req: RenderRequest, info: NetInfo, layer: str) -> torch.Tensor:
        """One layer's output [N, C, H, W] for ws [N, num_ws, w_dim], with the request's input transform and noise.

        Raises:
            engine.jobs.JobError: the network has no layer of that name.
        """
        from engine.jobs import JobError

        captured = self._run_synthesis(G, ws, req, info, capture=None if layer == OUTPUT_LAYER else layer)
        if layer not in captured:
            raise JobError(f'the network has no layer {layer!r}; pick one from the layer table')
        return captured[layer]

    def view_tensor(self, req: RenderRequest) -> tuple[torch.Tensor, str]:
        """What :meth:`render` displays for ``req`` before colour mapping: the shown layer's output [C, H, W]
        float32 (untransformed when asked) and the layer's name.

        Raises:
            engine.jobs.JobError: as :meth:`prepare` and :meth:`synthesize`.
        """
        net, device = self._prepared_net(req)
        G, info = net.G, net.info
        with torch.no_grad():
            ws = self._make_ws(net, req, device)
            layer = req.layer_name if req.layer_name not in (None, '') else OUTPUT_LAYER
            x = self.synthesize(G, ws, req, info, layer)[0].to(torch.float32)
            if req.untransform and info.has_input_transform and req.input_transform is not None:
                x = _untransform(x, _user_transform(req.input_transform), _layer_extent(G, layer, x.shape[-1]))
        return x, layer

    def _make_ws(self, net: LoadedNet, req: RenderRequest, device: torch.device) -> torch.Tensor:
        """The latent of a request, [1, num_ws, w_dim] float32 (docs/compatibility.md §6; see the module docstring)."""
        G = net.G
        info = net.info
        explicit = req.ws is not None
        slerp_pair = not explicit and req.seed_blend == 'slerp_z' and len(req.w0_seeds) == 2
        seeds = [] if explicit or slerp_pair else [int(s) for s, _ in req.w0_seeds]
        weights = [float(w) for _, w in req.w0_seeds]
        mix = [i for i in req.stylemix_idx if 0 <= int(i) < info.num_ws]
        mix_weight = float(req.stylemix_weight)
        if mix_weight == 0.0:
            mix = []
        all_seeds = seeds + ([int(req.stylemix_seed)] if mix else [])
        mapped = self._map_seeds(net, all_seeds, req.class_idx, device)  # seed -> [num_ws, w_dim]
        w_avg = G.mapping.w_avg.to(device=device, dtype=torch.float32)  # [w_dim]

        if explicit:  # A latent from a file replaces the seed blend.
            w = torch.tensor(req.ws, dtype=torch.float32, device=device)  # [num_ws, w_dim]
        elif slerp_pair:  # One z on the great circle between the two seeds' z, mapped once.
            w = self._map_slerp(net, req, device)
        elif len(seeds) == 1 and weights[0] == 1.0:
            # One seed at weight 1 is its ws exactly, bit for bit as G.mapping gives it, so that the lab's readouts
            # equal the metrics' per-sample values.
            w = mapped[seeds[0]]
        else:  # Blend in W relative to w_avg.
            w = w_avg.clone()  # [num_ws, w_dim] after broadcasting
            for seed, weight in zip(seeds, weights):
                w = w + weight * (mapped[seed] - w_avg)
        # Style mixing: chosen ws come from the second seed (weight 1), or move toward them (0 < weight < 1).
        if mix:
            w = w.clone()
            w_mix = mapped[int(req.stylemix_seed)][mix]
            w[mix] = w_mix if mix_weight == 1.0 else w[mix] + mix_weight * (w_mix - w[mix])
        return truncate_ws(w.unsqueeze(0), w_avg, float(req.trunc_psi), req.trunc_cutoff)

    def _map_slerp(self, net: LoadedNet, req: RenderRequest, device: torch.device) -> torch.Tensor:
        """ws [num_ws, w_dim] of ``z = slerp(z_a, z_b, t)`` for w0_seeds ((a, 1 - t), (b, t)) (``seed_blend``
        'slerp_z'; ``engine.latents.slerp``). A conditional network's class vector is ``(1 - t) * c_a + t * c_b``
        (each seed's one-hot: ``class_idx`` when set, else the class drawn from the seed)."""
        from engine import latents

        info = net.info
        (seed_a, w_a), (seed_b, w_b) = ((int(s), float(w)) for s, w in req.w0_seeds)
        t = w_b / (w_a + w_b)
        try:
            z_a, z_b = latents.z_from_seed(seed_a, info.z_dim)[0], latents.z_from_seed(seed_b, info.z_dim)[0]
            z = latents.slerp(z_a, z_b, t).astype(np.float32)[None]  # [1, z_dim]
            c = np.zeros([1, info.c_dim], np.float32)  # [1, c_dim]
            for seed, f in ((seed_a, 1.0 - t), (seed_b, t)):
                if info.c_dim > 0:
                    cls = (
                        req.class_idx
                        if req.class_idx is not None
                        else latents.class_from_seed(seed, info.c_dim, info.z_dim)
                    )
                    c[0, int(cls)] += f
        except ValueError as e:
            raise _RenderError(str(e)) from e
        zt, ct = torch.from_numpy(z).to(device), torch.from_numpy(c).to(device)
        return net.G.mapping(zt, ct, truncation_psi=1).to(torch.float32)[0]

    def _map_seeds(
        self, net: LoadedNet, seeds: list[int], class_idx: int | None, device: torch.device
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
            zt = torch.from_numpy(z).to(device)  # [N, z_dim]
            for i, (seed, _, key) in enumerate(todo):
                # One seed per call: the mapping's float rounding depends on the batch size (the GEMM kernel), so a
                # seed's ws must not depend on which other seeds happened to be mapped with it -- a recording re-rendered
                # headless (gen_video.py --timeline) or a capture rendered by gen_images.py --session then equals the
                # GUI's render bit for bit, whatever the GUI had cached.
                ws = G.mapping(zt[i : i + 1], c[i : i + 1], truncation_psi=1).to(torch.float32)  # [1, L, D]
                out[seed] = self._ws[key] = ws[0]
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
                # The input layer takes the inverse of the user's transform (docs/compatibility.md §3).
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
        from torch_utils import ops

        key = (str(device), ops.impl_generation())  # a new key after an op fell back to another implementation
        if key not in self._impl:
            try:
                self._impl[key] = dict(ops.impl_report(device, torch.float32))
            except Exception as e:  # A missing/broken ops report must not stop rendering.
                logger.warning('impl_report() failed: %s', e)
                self._impl[key] = {}
        return self._impl[key]


# ----------------------------------------------------------------------------------------------------------------
# Helpers.


def _check_request(req: RenderRequest, info: NetInfo) -> None:
    """User errors in a request -> _RenderError (one line, the fix). The field ranges are those of
    ``engine.protocol.clamp_request`` (the GUI clamps with the same function, so it never sends such a request)."""
    problems = list(request_errors(req)) + list(clamp_request(req)[1])
    if req.ws is not None:
        shape = (len(req.ws), len(req.ws[0]) if len(req.ws) else 0)
        if any(len(row) != shape[1] for row in req.ws) or shape != (info.num_ws, info.w_dim):
            problems.append(
                f'ws must have shape [num_ws, w_dim] = [{info.num_ws}, {info.w_dim}] for this network '
                f'(num_ws={info.num_ws}, w_dim={info.w_dim}), got {[len(req.ws)] + sorted({len(r) for r in req.ws})}; '
                'load a latent made for this network or clear it'
            )
        elif not np.isfinite(np.asarray(req.ws, dtype=np.float64)).all():
            problems.append('ws must hold finite numbers (NaN or infinity found)')
    if info.c_dim > 0 and req.class_idx is not None and not 0 <= int(req.class_idx) < info.c_dim:
        problems.append(
            f'class_idx must be in 0..{info.c_dim - 1} for this network, got {req.class_idx} '
            '(or None to draw a class per seed)'
        )
    if problems:
        raise _RenderError('render(): ' + '; '.join(problems))


def truncate_ws(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: float | None) -> torch.Tensor:
    """The truncation trick (StyleGAN, Karras et al. 2019, Sec. 3; StyleGAN2 Appendix B) with a cutoff that may be
    fractional: ws ``i < floor(cutoff)`` become ``w_avg + psi * (w_i - w_avg)``; w ``floor(cutoff)`` moves by the
    fraction, its psi being ``1 + (psi - 1) * (cutoff - floor(cutoff))``; the rest stay. An integer cutoff is the
    reference's ``truncation_cutoff`` exactly (docs/state_files.md, "Keyframes").

    Args:
        ws: [N, num_ws, w_dim] float32 (not modified).
        w_avg: [w_dim], same device and dtype.
        psi: truncation psi (1 = off).
        cutoff: number of leading ws truncated (None = all; clamped into 0..num_ws).

    Returns:
        ws truncated, [N, num_ws, w_dim] (``ws`` itself when nothing changes).
    """
    num_ws = ws.shape[1]
    c = float(num_ws) if cutoff is None else max(0.0, min(float(cutoff), float(num_ws)))
    full = int(np.floor(c))
    frac = c - full
    if psi == 1 or c <= 0:
        return ws
    ws = ws.clone()
    ws[:, :full] = w_avg + (ws[:, :full] - w_avg) * psi
    if frac > 0 and full < num_ws:
        ws[:, full] = w_avg + (ws[:, full] - w_avg) * (1.0 + (psi - 1.0) * frac)
    return ws


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


__all__ = ['Renderer', 'truncate_ws']
