#!/usr/bin/env python3
"""One GPU check: Triton op parity, full-frame speed, the visualizer's renderer and a short fp16 training run.

On one CUDA GPU (`--device cuda`, the default when CUDA is present), in under 8 minutes (`--quick`: about 2):

1. parity   -- every Triton kernel (upfirdn2d, filtered_lrelu, bias_act) against its `_ref` specification,
               float32 and float16, forward and gradients, on StyleGAN3-T/R layer shapes; tolerance table below.
2. frames   -- full G(z) frames of StyleGAN3-T and -R at 256 and 1024 px, batch 1 and 8, with fp16 in the
               4 highest resolutions and conv_clamp 256 (the reference configuration): impl triton vs ref vs
               `torch.compile` of the ref path; ms per frame (CUDA events, median), ratio ref/triton, and per op
               the achieved bandwidth (bytes read + written by each call / its time) of one instrumented frame.
3. renderer -- the visualizer's renderer on the bundled network: in-process (`engine.renderer.Renderer`) and in
               the separate render process (`engine.async_renderer.AsyncRenderer`): output, a layer view, FFT,
               input transform + untransform, force FP32.
4. training -- 20 training iterations (Gmain, Greg, Dmain, Dreg) of the stylegan3-t and stylegan2 presets at 64 px
               with fp16 and the regularisers (R1; path length for stylegan2); losses and weights must stay finite.

It prints one table and writes everything to `--out` as JSON. Without CUDA it says so and runs what a CPU can
check: the parity cases on tiny shapes in Triton's interpreter (TRITON_INTERPRET=1, set by this script before the
kernels are imported), one tiny frame per config (ref vs auto), the renderer on the CPU and two training
iterations at 32 px -- so the script itself is exercised by the test suite.

Examples:
    python bench/gpu_check.py --out report.json            # the full check (a CUDA GPU, < 8 min)
    python bench/gpu_check.py --quick --out report.json    # about 2 minutes
    python bench/gpu_check.py --sections parity,frames     # a subset
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import platform
import statistics
import sys
import time
import traceback

import click

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SECTIONS = ('parity', 'frames', 'renderer', 'training')

# Tolerances, triton vs ref (|triton - ref| <= atol * max|ref| + rtol * |ref|); the same table as
# tests/torch_utils/test_ops_triton.py (float32 and float16; the kernels accumulate in float32).
TOLERANCES = {
    ('forward', 'float32'): (2e-6, 1e-5),
    ('grad', 'float32'): (2e-6, 1e-5),
    ('forward', 'float16'): (4e-3, 1e-2),
    ('grad', 'float16'): (6e-3, 1e-2),
}


class Budget:
    """Wall-clock budget: later items are skipped (and reported as skipped) once it is spent."""

    def __init__(self, seconds: float):
        self.start, self.seconds = time.perf_counter(), seconds

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)


# ----------------------------------------------------------------------------------------------------------------
# 1. Op parity.


def _parity_cases(gpu: bool) -> list[tuple[str, dict]]:
    """(op, arguments) cases: StyleGAN3-T/R layer shapes on a GPU, tiny shapes for the interpreter."""
    n, c, s = (4, 64, 36) if gpu else (1, 2, 6)
    cases = [
        ('filtered_lrelu', dict(shape=[n, c, s, s], fu='sep12', fd='sep12', up=2, down=2, padding=[11, 10, 11, 10],
                                clamp=256.0, bias=True)),  # SG3-T layer
        ('filtered_lrelu', dict(shape=[n, c, s, s], fu='sep12', fd='rad12', up=2, down=2, padding=[11, 10, 11, 10],
                                clamp=0.5, bias=True)),  # SG3-R layer (radial down filter), small clamp
        ('filtered_lrelu', dict(shape=[n, c, s, s], fu='sep8', fd='sep8', up=4, down=4, padding=[9, 8, 9, 8],
                                clamp=None, bias=True)),
        ('filtered_lrelu', dict(shape=[n, c, s, s], fu='sep6', fd='sep6', up=1, down=1, padding=[5, 5, 5, 5],
                                clamp=None, bias=False)),
        ('upfirdn2d', dict(shape=[n, c, s, s], f='sep4', up=2, down=1, padding=[2, 1, 2, 1])),
        ('upfirdn2d', dict(shape=[n, c, s, s], f='sep4', up=1, down=2, padding=[1, 1, 1, 1])),
        ('upfirdn2d', dict(shape=[n, c, s, s], f='rad5', up=4, down=2, padding=[3, -1, 2, 4])),
        ('bias_act', dict(shape=[n, c, s, s], act='lrelu', clamp=256.0)),
        ('bias_act', dict(shape=[n, c * s * s], act='linear', clamp=None)),
    ]  # fmt: skip
    return cases if gpu else [cases[i] for i in (0, 1, 6, 7)]  # the interpreter: SG3-T/R layers, one of each op


def _filter(spec: str | None, device):
    import numpy as np

    from torch_utils.ops import upfirdn2d

    if spec is None:
        return None
    kind, k = spec[:3], int(spec[3:])
    if kind == 'sep':
        return upfirdn2d.setup_filter(np.kaiser(k, 6.0), device=device, separable=True)
    r = np.hypot(*np.meshgrid(np.arange(k) - (k - 1) / 2, np.arange(k) - (k - 1) / 2)) / (k / 2)
    return upfirdn2d.setup_filter(np.sinc(r * 1.5) * np.clip(1 - r, 0, 1), device=device)


def _run_op(op: str, args: dict, impl: str, dtype, device, seed: int = 0):
    """(output, [input gradients]) of one op call with random inputs and a random output gradient."""
    import torch

    from torch_utils.ops import bias_act, filtered_lrelu, upfirdn2d

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(args['shape'], generator=g).to(device, dtype).requires_grad_()
    inputs = [x]
    if op == 'filtered_lrelu':
        b = (torch.randn([x.shape[1]], generator=g) * 0.5).to(device, dtype).requires_grad_() if args['bias'] else None
        inputs += [b] if b is not None else []
        fu, fd = _filter(args['fu'], device), _filter(args['fd'], device)
        y = filtered_lrelu.filtered_lrelu(x, fu, fd, b, up=args['up'], down=args['down'], padding=args['padding'],
                                          clamp=args['clamp'], impl=impl)  # fmt: skip
    elif op == 'upfirdn2d':
        f = _filter(args['f'], device)
        y = upfirdn2d.upfirdn2d(x, f, up=args['up'], down=args['down'], padding=args['padding'], impl=impl)
    else:
        b = torch.randn([x.shape[1]], generator=g).to(device, dtype).requires_grad_()
        inputs.append(b)
        y = bias_act.bias_act(x, b, act=args['act'], clamp=args['clamp'], impl=impl)
    dy = torch.randn(y.shape, generator=g).to(device, dtype)
    grads = torch.autograd.grad(y, inputs, dy)
    return y.detach(), [gr.detach() for gr in grads]


def _rel_err(a, e, atol: float, rtol: float) -> tuple[float, bool]:
    """(max |a - e| / max |e|, within tolerance)."""
    a, e = a.float(), e.float()
    scale = float(e.abs().max()) or 1.0
    diff = (a - e).abs()
    ok = bool(torch_isfinite(a)) and bool((diff <= atol * scale + rtol * e.abs()).all())
    return float(diff.max()) / scale, ok


def torch_isfinite(t) -> bool:
    import torch

    return bool(torch.isfinite(t).all())


def check_parity(device: str, budget: Budget) -> list[dict]:
    import torch

    rows = []
    for op, args in _parity_cases(device == 'cuda'):
        for dtype in (torch.float32, torch.float16):
            name = str(dtype).replace('torch.', '')
            row = dict(op=op, args={k: v for k, v in args.items()}, dtype=name)
            if budget.left() <= 0:
                rows.append(dict(row, status='skipped (time budget)'))
                continue
            try:
                y_t, g_t = _run_op(op, args, 'triton', dtype, device)
                y_r, g_r = _run_op(op, args, 'ref', dtype, device)
                fwd_err, fwd_ok = _rel_err(y_t, y_r, *TOLERANCES[('forward', name)])
                grad = [_rel_err(a, e, *TOLERANCES[('grad', name)]) for a, e in zip(g_t, g_r)]
                row.update(forward_rel_err=fwd_err, grad_rel_err=max(e for e, _ in grad))
                row['status'] = 'pass' if fwd_ok and all(ok for _, ok in grad) else 'FAIL'
            except Exception as e:  # a check reports, it does not stop the run
                row.update(status='ERROR', error=f'{type(e).__name__}: {e}', traceback=traceback.format_exc())
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------------------------
# 2. Frames.

FRAME_CONFIGS = {  # name -> (res, Generator kwargs); channel counts as the stylegan3 presets use them
    'sg3t-256': (256, dict(channel_base=32768, channel_max=512)),
    'sg3r-256': (256, dict(channel_base=32768, channel_max=1024, conv_kernel=1, use_radial_filters=True)),
    'sg3t-1024': (1024, dict(channel_base=32768, channel_max=512)),
    'sg3r-1024': (1024, dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)),
    'sg3t-cpu': (16, dict(channel_base=512, channel_max=16)),  # no-CUDA smoke configs
    'sg3r-cpu': (16, dict(channel_base=512, channel_max=16, conv_kernel=1, use_radial_filters=True)),
}


def _make_generator(name: str, device):
    import torch

    from training import networks_stylegan3

    res, kwargs = FRAME_CONFIGS[name]
    torch.manual_seed(0)
    G = networks_stylegan3.Generator(
        z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, mapping_kwargs=dict(num_layers=2),
        num_fp16_res=4, conv_clamp=256, **kwargs,
    )  # fmt: skip
    return G.eval().requires_grad_(False).to(device)


def _time_ms(fn, device: str, repeats: int) -> float:
    """Median wall time of ``fn()`` in ms (CUDA events on CUDA), after one warm-up call."""
    import torch

    fn()
    times = []
    for _ in range(repeats):
        if device == 'cuda':
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


@contextlib.contextmanager
def _op_meter(device: str):
    """Counts bytes (inputs + output) and time of every top-level op call; yields {op: [bytes, events/seconds]}."""
    import torch

    from torch_utils.ops import bias_act, filtered_lrelu, upfirdn2d

    stats: dict[str, list] = {}
    depth = [0]
    originals = []

    def wrap(module, name):
        orig = getattr(module, name)
        originals.append((module, name, orig))

        def timed(*args, **kwargs):
            if depth[0]:
                return orig(*args, **kwargs)
            depth[0] += 1
            try:
                if device == 'cuda':
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    y = orig(*args, **kwargs)
                    end.record()
                    mark = (start, end)
                else:
                    t0 = time.perf_counter()
                    y = orig(*args, **kwargs)
                    mark = time.perf_counter() - t0
            finally:
                depth[0] -= 1
            nbytes = y.numel() * y.element_size()
            nbytes += sum(a.numel() * a.element_size() for a in args if isinstance(a, torch.Tensor))
            entry = stats.setdefault(name, [0, [], 0])
            entry[0] += nbytes
            entry[1].append(mark)
            entry[2] += 1
            return y

        setattr(module, name, timed)

    wrap(filtered_lrelu, 'filtered_lrelu')
    wrap(upfirdn2d, 'upfirdn2d')
    wrap(bias_act, 'bias_act')
    try:
        yield stats
    finally:
        for module, name, orig in originals:
            setattr(module, name, orig)


def _op_bandwidth(G, ws, device: str, impl: str) -> dict:
    """{op: {'calls', 'ms', 'gb_per_s'}} for one frame with ``impl`` (instrumented; not used for the frame time)."""
    import torch

    from torch_utils import ops

    with ops.default_impl(impl), _op_meter(device) as stats, torch.no_grad():
        G.synthesis(ws, noise_mode='const')
        if device == 'cuda':
            torch.cuda.synchronize()
    out = {}
    for name, (nbytes, marks, calls) in stats.items():
        sec = sum((m[0].elapsed_time(m[1]) / 1e3) if isinstance(m, tuple) else m for m in marks)
        out[name] = dict(calls=calls, ms=sec * 1e3, gb_per_s=nbytes / max(sec, 1e-12) / 1e9)
    return out


def check_frames(device: str, quick: bool, budget: Budget, with_compile: bool) -> list[dict]:
    import torch

    from torch_utils import ops

    gpu = device == 'cuda'
    if gpu:
        # 1024 px first: the target configurations (and their torch.compile) before the rest of the budget.
        names = ['sg3t-256', 'sg3r-256'] if quick else ['sg3t-1024', 'sg3r-1024', 'sg3t-256', 'sg3r-256']
        batches = (1, 8) if not quick else (1,)
        impls = ('triton', 'ref')
    else:
        names, batches, impls = ['sg3t-cpu', 'sg3r-cpu'], (1,), ('auto', 'ref')
    repeats = (3 if quick else 5) if gpu else 1
    rows = []
    for name in names:
        if budget.left() <= 0:
            rows.append(dict(config=name, status='skipped (time budget)'))
            continue
        G = _make_generator(name, device)
        for batch in batches:
            row: dict = dict(config=name, batch=batch, res=FRAME_CONFIGS[name][0])
            if budget.left() <= 0:
                rows.append(dict(row, status='skipped (time budget)'))
                continue
            try:
                z = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(1)).to(device)
                with torch.no_grad():
                    ws = G.mapping(z, None)
                images = {}
                for impl in impls:
                    with ops.default_impl(impl), torch.no_grad():
                        ms = _time_ms(lambda: G.synthesis(ws, noise_mode='const'), device, repeats)  # noqa: B023
                        images[impl] = G.synthesis(ws, noise_mode='const').float()
                    row[f'{impl}_ms_per_frame'] = ms / batch
                    row[f'{impl}_ops'] = _op_bandwidth(G, ws, device, impl)
                if with_compile and batch == 1 and budget.left() > 150:  # compiling one synthesis: ~1-2 min
                    try:
                        row.update(_compiled_frame(G, ws, device, repeats))
                    except Exception as e:  # reported in the row; the triton/ref numbers stand
                        row['compile_error'] = f'{type(e).__name__}: {e}'
                fast = impls[0]
                row['speedup_vs_ref'] = row['ref_ms_per_frame'] / row[f'{fast}_ms_per_frame']
                diff = (images[fast] - images['ref']).abs().max().item()
                row['max_abs_diff_vs_ref'] = diff  # images in [-1, 1]-ish; fp16 layers
                row['finite'] = all(torch_isfinite(img) for img in images.values())
                row['status'] = 'pass' if row['finite'] and diff < 0.1 else 'FAIL'
            except Exception as e:
                row.update(status='ERROR', error=f'{type(e).__name__}: {e}', traceback=traceback.format_exc())
            rows.append(row)
            if gpu:
                torch.cuda.empty_cache()
    return rows


def _compiled_frame(G, ws, device: str, repeats: int) -> dict:
    """torch.compile of the synthesis network on the reference ops (compile time and ms per frame)."""
    import torch

    from torch_utils import ops

    with ops.default_impl('ref'):  # read once while tracing (see torch_utils/ops/_impl_context.py)
        compiled = torch.compile(G.synthesis)
        t0 = time.perf_counter()
        with torch.no_grad():
            compiled(ws, noise_mode='const')
            if device == 'cuda':
                torch.cuda.synchronize()
        compile_s = time.perf_counter() - t0
        with torch.no_grad():
            ms = _time_ms(lambda: compiled(ws, noise_mode='const'), device, repeats)
    return dict(compile_ref_ms_per_frame=ms / ws.shape[0], compile_s=compile_s)


# ----------------------------------------------------------------------------------------------------------------
# 3. Renderer.


def _requests():
    from engine.protocol import RenderRequest

    c, s = math.cos(0.3), math.sin(0.3)
    transform = ((c, -s, 0.12), (s, c, -0.05), (0.0, 0.0, 1.0))
    return {
        'output': RenderRequest(w0_seeds=((1, 1.0),)),
        'layer': RenderRequest(w0_seeds=((1, 1.0),), layer_name='L3_36_1024'),  # replaced by a real name below
        'fft': RenderRequest(w0_seeds=((2, 1.0),), fft_show=True),
        'transform': RenderRequest(w0_seeds=((3, 1.0),), input_transform=transform, untransform=True),
        'force_fp32': RenderRequest(w0_seeds=((4, 1.0),), force_fp32=True, fft_show=True),
    }


def check_renderer(device: str, budget: Budget) -> list[dict]:
    import dataclasses

    from engine.async_renderer import AsyncRenderer
    from engine.renderer import Renderer

    rows = []
    reqs = {k: dataclasses.replace(r, device=device) for k, r in _requests().items()}
    try:
        renderer = Renderer(device=device)
        first = renderer.render(reqs['output'])  # loads the bundled network
        layers = [layer.name for layer in first.layers if layer.name != 'output']
        if layers:
            reqs['layer'] = dataclasses.replace(reqs['layer'], layer_name=layers[len(layers) // 2])
        for name, req in reqs.items():
            renderer.render(req)  # warm-up
            results = [renderer.render(req) for _ in range(3 if device == 'cuda' else 1)]
            res = results[-1]
            ok = res.error is None and res.image is not None and (not req.fft_show or res.fft is not None)
            rows.append(dict(mode='in-process', request=name, render_ms=statistics.median(r.render_ms for r in results),
                             impl=dict(res.impl), status='pass' if ok else 'FAIL', error=res.error))  # fmt: skip
    except Exception as e:
        rows.append(dict(mode='in-process', status='ERROR', error=f'{type(e).__name__}: {e}'))
    if budget.left() <= 0:
        return rows + [dict(mode='separate process', status='skipped (time budget)')]
    ar = AsyncRenderer(device=device, separate_process=True)
    try:
        for name, req in reqs.items():
            t0 = time.perf_counter()
            ar.set_request(dataclasses.replace(req, img_scale_db=0.01))  # differs from any earlier request
            stamp = ar.last_stamp
            res = None
            while time.perf_counter() - t0 < 180:
                r = ar.get_result()
                if r is not None and r.stamp >= stamp and (r.image is not None or r.error):
                    res = r
                    break
                time.sleep(0.005)
            wall_ms = (time.perf_counter() - t0) * 1e3
            ok = res is not None and res.error is None and res.image is not None
            rows.append(dict(mode='separate process', request=name, wall_ms=wall_ms,
                             render_ms=None if res is None else res.render_ms, status='pass' if ok else 'FAIL',
                             error=None if res is None else res.error))  # fmt: skip
    except Exception as e:
        rows.append(dict(mode='separate process', status='ERROR', error=f'{type(e).__name__}: {e}'))
    finally:
        ar.close()
    return rows


# ----------------------------------------------------------------------------------------------------------------
# 4. Training.


class _FakeSet:
    def __init__(self, res):
        self.resolution, self.num_channels, self.label_dim = res, 3, 0


def check_training(device: str, budget: Budget, quick: bool = False) -> list[dict]:
    import torch

    import train
    from training.loss import StyleGAN2Loss
    from training.training_loop import _build_networks, _make_phases, _update_ema, ema_beta, run_phase

    gpu = device == 'cuda'
    res, batch, iters = (64, 16, 8 if quick else 20) if gpu else (16, 2, 1)
    cbase, cmax = (16384, 256) if gpu else (512, 16)
    rows = []
    for cfg in ('stylegan3-t', 'stylegan2'):
        row: dict = dict(cfg=cfg, res=res, batch=batch, iters=iters)
        if budget.left() <= 0:
            rows.append(dict(row, status='skipped (time budget)'))
            continue
        try:
            c = train.build_training_options(cfg=cfg, data='-', gpus=1, batch=batch, gamma=1, cbase=cbase, cmax=cmax,
                                             aug='noaug', workers=0, device_type=device, dataset_resolution=res)  # fmt: skip
            torch.manual_seed(0)
            G, D, G_ema = _build_networks(c['G_kwargs'], c['D_kwargs'], _FakeSet(res), device)
            loss = StyleGAN2Loss(device, G, D, **c['loss_kwargs'])
            phases = _make_phases(G, D, c['G_opt_kwargs'], c['D_opt_kwargs'], c['G_reg_interval'], c['D_reg_interval'])
            real = [torch.rand([batch, 3, res, res], device=device) * 2 - 1]
            cond = [torch.zeros([batch, 0], device=device)]
            t0 = time.perf_counter()
            ran = set()
            for it in range(iters):
                for phase in phases:
                    # Every phase, regularisers included, runs in the first iterations (then at its interval).
                    if it % phase.interval == 0 or phase.name not in ran:
                        ran.add(phase.name)
                        z = [torch.randn([batch, G.z_dim], device=device)]
                        run_phase(phase, loss, real, cond, z, cond, cur_nimg=it * batch, num_gpus=1)
                _update_ema(G_ema, G, ema_beta(batch, it * batch, c['ema_kimg'], c['ema_rampup']))
            if gpu:
                torch.cuda.synchronize()
            row['sec_per_iter'] = (time.perf_counter() - t0) / iters
            row['phases'] = sorted(ran)
            row['fp16_res'] = c['G_kwargs'].get('num_fp16_res')
            finite = all(torch_isfinite(p) for m in (G, D, G_ema) for p in m.parameters())
            row['finite'] = finite
            row['status'] = 'pass' if finite and {'Greg', 'Dreg'} <= ran else 'FAIL'
        except Exception as e:
            row.update(status='ERROR', error=f'{type(e).__name__}: {e}', traceback=traceback.format_exc())
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------------------------
# Report.


def _table(report: dict) -> str:
    lines = [f'# gpu_check: {report["device"]} | torch {report["torch"]} | triton {report["triton"]} | '
             f'{"quick" if report["quick"] else "full"} | {report["elapsed_s"]:.0f} s']  # fmt: skip
    lines.append('# seconds per section: ' + ', '.join(f'{k} {v:.0f}' for k, v in report['section_s'].items()))
    if not report['cuda']:
        lines.append('# no CUDA device: CPU-checkable parts only (Triton interpreter, tiny shapes)')
    for r in report.get('parity', []):
        errs = f'fwd {r.get("forward_rel_err", float("nan")):.1e} grad {r.get("grad_rel_err", float("nan")):.1e}'
        lines.append(f'parity   {r["op"]:15s} {r["dtype"]:8s} {errs}  {r["status"]}')
    for r in report.get('frames', []):
        if 'batch' not in r or 'ref_ms_per_frame' not in r:
            lines.append(f'frames   {r.get("config")} b{r.get("batch", "-")}  {r["status"]} {r.get("error", "")}')
            continue
        fast = 'triton' if 'triton_ms_per_frame' in r else 'auto'
        comp = f' compile(ref) {r["compile_ref_ms_per_frame"]:8.2f}' if 'compile_ref_ms_per_frame' in r else ''
        ops_bw = ' '.join(
            f'{op}:{v["gb_per_s"]:.0f}GB/s' for op, v in sorted(r.get(f'{fast}_ops', {}).items())
        )  # fmt: skip
        lines.append(f'frames   {r["config"]:9s} b{r["batch"]} ms/frame {fast} {r[f"{fast}_ms_per_frame"]:8.2f} '
                     f'ref {r["ref_ms_per_frame"]:8.2f}{comp}  ref/{fast} {r["speedup_vs_ref"]:5.2f}x  {ops_bw}  '
                     f'{r["status"]}')  # fmt: skip
    for r in report.get('renderer', []):
        ms, wall = r.get('render_ms'), r.get('wall_ms')
        times = ('' if ms is None else f'render {ms:7.1f} ms') + (
            '' if wall is None else f'  end-to-end {wall:7.1f} ms'
        )
        lines.append(
            f'renderer {r["mode"]:16s} {r.get("request", "-"):10s} {times}  {r["status"]} {r.get("error") or ""}'
        )
    for r in report.get('training', []):
        spi = r.get('sec_per_iter')
        lines.append(f'training {r["cfg"]:12s} {r["res"]}px b{r["batch"]} {r["iters"]} it '
                     f'{"" if spi is None else f"{spi * 1e3:8.1f} ms/it"}  {r["status"]} {r.get("error", "")}')  # fmt: skip
    return '\n'.join(lines)


def run_check(out: str | None, quick: bool, sections: tuple[str, ...], device: str | None) -> dict:
    """Runs the selected sections and returns the report (also written to ``out`` when given)."""
    import torch

    cuda = torch.cuda.is_available()
    device = device or ('cuda' if cuda else 'cpu')
    if device == 'cuda' and not cuda:
        raise click.ClickException('--device cuda: no CUDA device is available')
    if device != 'cuda' and 'parity' in sections:
        # CPU: the Triton kernels run in the interpreter. Triton reads this when the kernels are first imported
        # (inside the op calls below); an entry point may set it, library code never does.
        os.environ.setdefault('TRITON_INTERPRET', '1')
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    # On a GPU the budget keeps the run under 2 / 8 minutes (seconds per section below, unused time carried
    # forward); on the CPU every (tiny) part runs.
    shares = (dict(parity=20, frames=45, renderer=20, training=25) if quick else
              dict(parity=50, frames=280, renderer=40, training=80))  # fmt: skip
    budget = Budget(sum(shares.values()) if device == 'cuda' else 1e9)
    report: dict = dict(
        device=torch.cuda.get_device_name(0) if device == 'cuda' else f'cpu ({platform.processor() or "unknown"})',
        cuda=device == 'cuda', torch=torch.__version__, triton=triton_version, quick=quick, sections=list(sections),
    )  # fmt: skip
    if device != 'cuda':
        click.echo('No CUDA device: running the CPU-checkable parts (Triton interpreter parity on tiny shapes, tiny '
                   'frames, the renderer on the CPU, one training iteration per preset).')  # fmt: skip
    report['section_s'] = {}
    for i, section in enumerate(sections):
        t0 = time.perf_counter()
        # A section may use what is left minus the shares reserved for the sections after it.
        section_budget = Budget(budget.left() - sum(shares[s] for s in sections[i + 1 :]))
        if section == 'parity' and triton_version is None:
            report['parity'] = [dict(op='-', dtype='-', status='skipped (triton is not installed)')]
        elif section == 'parity':
            report['parity'] = check_parity(device, section_budget)
        elif section == 'frames':
            report['frames'] = check_frames(device, quick, section_budget, with_compile=device == 'cuda' and not quick)
        elif section == 'renderer':
            report['renderer'] = check_renderer(device, section_budget)
        elif section == 'training':
            report['training'] = check_training(device, section_budget, quick)
        report['section_s'][section] = time.perf_counter() - t0
    report['elapsed_s'] = time.perf_counter() - budget.start
    from torch_utils import ops
    from torch_utils.ops import _triton_support

    report['impl_report_fp16'] = ops.impl_report(device, torch.float16)
    report['triton_failures'] = dict(_triton_support._failed)  # ops whose kernel failed to compile: 'auto' ran ref
    statuses = [r.get('status', '') for s in SECTIONS for r in report.get(s, [])]
    report['ok'] = all(s == 'pass' or s.startswith('skipped') for s in statuses)
    if out:
        path = pathlib.Path(out)
        tmp = path.with_name(path.name + '.tmp')
        tmp.write_text(json.dumps(report, indent=1, default=str))
        os.replace(tmp, path)
    return report


@click.command()
@click.option('--out', type=click.Path(dir_okay=False), default=None, metavar='PATH', help='Write the JSON report here')
@click.option('--quick', is_flag=True, help='About 2 minutes: 256 px, batch 1, no torch.compile')
@click.option('--sections', default=','.join(SECTIONS), show_default=True, metavar='LIST',
              help=f'Comma-separated subset of {", ".join(SECTIONS)}')  # fmt: skip
@click.option('--device', type=click.Choice(['cuda', 'cpu']), default=None,
              help='Default: cuda when available, else cpu (the CPU-checkable parts)')  # fmt: skip
def main(out: str | None, quick: bool, sections: str, device: str | None) -> None:
    """Runs the GPU check and prints its table; exits with status 1 when a check failed."""
    names = tuple(s.strip() for s in sections.split(',') if s.strip())
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        raise click.BadParameter(f'unknown section(s) {unknown}; choose from {list(SECTIONS)}', param_hint='--sections')
    report = run_check(out, quick, names, device)
    click.echo(_table(report))
    if out:
        click.echo(f'# report written to {out}')
    if not report['ok']:
        sys.exit(1)


if __name__ == '__main__':
    main()
