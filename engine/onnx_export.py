"""ONNX export of generators (StyleGAN2, StyleGAN3-T/R, conditional or not), verified in ONNX Runtime.

The exported graph is our pure-PyTorch specification path of every op (`torch_utils.ops.default_impl('ref')`: no
compiled kernels), traced by `torch.onnx.export(dynamo=True)`:

- `inputs='z'`: inputs `z` [N, z_dim] float32 (standard normal), `c` [N, c_dim] float32 (one-hot; only for
  conditional networks) and `truncation_psi` [1] float32; mapping, then the truncation trick on every ws
  (StyleGAN, Karras et al. 2019, Sec. 3: w' = w_avg + psi * (w - w_avg)), then synthesis.
- `inputs='ws'`: input `ws` [N, num_ws, w_dim] float32 straight into synthesis.

Synthesis runs with `noise_mode='const'` (the stored noise buffers become constants) and the network's current
StyleGAN3 input transform baked in. Output `img` [N, img_channels, H, W] float32, about [-1, 1]. The batch size N is
fixed at export time. Requires the optional extra `pip install .[onnx]` (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pathlib
import time
import warnings
from typing import Any

import numpy as np
import torch

from engine.atomic_files import atomic_path

__all__ = ['ExportReport', 'OnnxExportError', 'export_generator_onnx', 'make_export_module', 'onnx_inputs']

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 18  # the exporter's native opset; older ones need a version conversion that can fail
MIN_OPSET = 18
TOLERANCE = 1e-3  # max |ORT - PyTorch| on [-1, 1] images in fp32 before an export counts as verified


class OnnxExportError(RuntimeError):
    """The export or its verification failed; the message says what and how to fix it."""


class _FromZ(torch.nn.Module):
    def __init__(self, G: Any) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: torch.Tensor) -> torch.Tensor:
        ws = self.G.mapping(z, c, truncation_psi=1)  # [N, L, D]
        w_avg = self.G.mapping.w_avg  # [D]
        ws = w_avg + truncation_psi.reshape(1, 1, 1) * (ws - w_avg)  # truncation trick on all ws
        return self.G.synthesis(ws, noise_mode='const', force_fp32=True)


class _FromZUnconditional(_FromZ):
    def forward(self, z: torch.Tensor, truncation_psi: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(z, None, truncation_psi)


class _FromWs(torch.nn.Module):
    def __init__(self, G: Any) -> None:
        super().__init__()
        self.G = G

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        return self.G.synthesis(ws, noise_mode='const', force_fp32=True)


def make_export_module(G: Any, inputs: str = 'z') -> torch.nn.Module:
    """The module that is exported: see the module docstring for inputs and output.

    Raises:
        ValueError: `inputs` not 'z' or 'ws'.
    """
    if inputs == 'ws':
        return _FromWs(G).eval()
    if inputs == 'z':
        return (_FromZ(G) if G.c_dim > 0 else _FromZUnconditional(G)).eval()
    raise ValueError(f"make_export_module(): inputs must be 'z' or 'ws', got {inputs!r}")


def onnx_inputs(G: Any, inputs: str = 'z', batch: int = 1, seed: int = 0, psi: float = 0.7) -> dict[str, np.ndarray]:
    """Deterministic example inputs by name (what the exported graph takes), float32 numpy arrays."""
    rnd = np.random.RandomState(seed)
    if inputs == 'ws':
        with torch.no_grad():
            z = torch.from_numpy(rnd.randn(batch, G.z_dim).astype(np.float32))
            c = torch.zeros([batch, G.c_dim])
            if G.c_dim > 0:
                c[torch.arange(batch), torch.from_numpy(rnd.randint(G.c_dim, size=batch))] = 1
            ws = G.mapping(z, c, truncation_psi=psi)
        return {'ws': ws.numpy().astype(np.float32)}
    out = {'z': rnd.randn(batch, G.z_dim).astype(np.float32)}
    if G.c_dim > 0:
        onehot = np.zeros([batch, G.c_dim], np.float32)
        onehot[np.arange(batch), rnd.randint(G.c_dim, size=batch)] = 1
        out['c'] = onehot
    out['truncation_psi'] = np.array([psi], np.float32)
    return out


class ExportReport(dict):
    """Facts of one export: output path, opset, inputs {name: shape}, output shape, max_abs_diff, file_bytes,
    ort_ms (one ORT run), export_sec."""


def _require_onnx() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise OnnxExportError(
            f'ONNX export needs the optional packages onnx, onnxscript and onnxruntime ({e}); install them with '
            "pip install '.[onnx]'"
        ) from e
    return onnx, onnxruntime


def export_generator_onnx(
    G: Any,
    output: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    batch: int = 1,
    inputs: str = 'z',
    tolerance: float = TOLERANCE,
) -> ExportReport:
    """Exports `G` to an ONNX file and verifies it in ONNX Runtime (CPU) against PyTorch before keeping it.

    Args:
        G: Generator (StyleGAN2 or StyleGAN3), moved to the CPU in fp32 for the export.
        output: Path of the `.onnx` file (written atomically: only a verified file appears there).
        opset: ONNX opset, >= 18.
        batch: Batch size N of the graph (fixed), >= 1.
        inputs: 'z' (z [, c], truncation_psi -> img) or 'ws' (ws -> img).
        tolerance: Largest accepted |ORT - PyTorch| on the images.

    Returns:
        ExportReport.

    Raises:
        ValueError: Bad opset, batch or inputs.
        OnnxExportError: Missing packages, a failed export, a file with another opset, or a verification
            difference above `tolerance` (the file is then not written).
    """
    onnx, ort = _require_onnx()
    if int(opset) < MIN_OPSET:
        raise ValueError(f'export_generator_onnx(): opset must be >= {MIN_OPSET}, got {opset}')
    if int(batch) < 1:
        raise ValueError(f'export_generator_onnx(): batch must be >= 1, got {batch}')
    G = G.to('cpu').to(torch.float32).eval().requires_grad_(False)
    module = make_export_module(G, inputs)
    feeds = onnx_inputs(G, inputs, int(batch))
    output = pathlib.Path(output)
    with atomic_path(output, suffix='.part', mode=0o644) as tmp_path:
        tmp = str(tmp_path)
        t0 = time.perf_counter()
        expected = _export_to(tmp, module, feeds, int(opset))
        export_sec = time.perf_counter() - t0
        _check_opset(onnx, tmp, int(opset))
        session = ort.InferenceSession(tmp, providers=['CPUExecutionProvider'])
        t1 = time.perf_counter()
        actual = session.run(['img'], feeds)[0]
        ort_ms = (time.perf_counter() - t1) * 1e3
        diff = float(np.abs(actual.astype(np.float64) - expected).max())
        if not np.isfinite(diff) or diff > tolerance:
            raise OnnxExportError(
                f'ONNX Runtime output differs from PyTorch by {diff:.3g} (> {tolerance:g}); the file was not written'
            )
    return ExportReport(
        output=str(output), opset=int(opset), inputs={k: list(v.shape) for k, v in feeds.items()},
        output_shape=list(expected.shape), max_abs_diff=diff, file_bytes=output.stat().st_size, ort_ms=ort_ms,
        export_sec=export_sec,
    )  # fmt: skip


def _export_to(path: str, module: torch.nn.Module, feeds: dict[str, np.ndarray], opset: int) -> np.ndarray:
    """``torch.onnx.export`` of ``module`` (with the reference ops, quietly) to ``path``; returns PyTorch's output
    for ``feeds`` (the verification's expected image). Raises OnnxExportError when the exporter fails."""
    from torch_utils.ops import default_impl

    args = tuple(torch.from_numpy(v) for v in feeds.values())  # in the order of forward()'s parameters
    log = io.StringIO()
    with default_impl('ref'), torch.no_grad(), contextlib.redirect_stdout(log), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try:
            torch.onnx.export(
                module, args, path, input_names=list(feeds), output_names=['img'], opset_version=opset,
                dynamo=True, external_data=False, verbose=False,
            )  # fmt: skip
        except Exception as e:
            raise OnnxExportError(f'torch.onnx.export failed ({type(e).__name__}: {e})') from e
        expected = module(*args).numpy()
    logger.debug('torch.onnx.export said: %s', log.getvalue())
    return expected


def _check_opset(onnx: Any, path: str, opset: int) -> None:
    """Raises OnnxExportError when the file at ``path`` does not use the default-domain ``opset``."""
    model = onnx.load(path, load_external_data=False)
    got_opset = next((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), None)
    if got_opset != opset:
        raise OnnxExportError(f'the exporter wrote opset {got_opset}, not the requested {opset}; use --opset 18')
