"""Fused float32 CPU forward kernel of ``filtered_lrelu`` (``impl='cpp'``; private).

The C++ source (``filtered_lrelu_cpu.cpp``, image planes spread over torch's OpenMP threads (std::threads where torch
or the compiler is not GNU OpenMP), compiler-vectorised row passes) is built by
``torch_utils.custom_ops.get_plugin`` on the first call that needs it -- never at import time -- and cached per
source/toolchain. ``impl='auto'`` starts the build in a background thread and uses the plain-PyTorch ``'fast'`` path
until the kernel is loaded; when it cannot be built (no compiler, no ninja, a failed build) one warning names the
build log and ``'auto'`` keeps using ``'fast'``.
"""

from __future__ import annotations

import logging
import pathlib
import threading
import types

import torch

_log = logging.getLogger(__name__)
_SOURCE = 'filtered_lrelu_cpu.cpp'
_state: dict[str, object] = {}  # 'thread', then 'module' or 'error'; process-wide memo, like custom_ops' own
_state_lock = threading.Lock()


def _uses_gnu_openmp() -> bool:
    """Whether the kernel can join torch's own OpenMP team: Linux, torch's ATen backend is OpenMP (its wheels bundle
    libgomp, soname libgomp.so.1, which the kernel's -fopenmp link then resolves to) and the compiler is GCC (clang
    would link LLVM's libomp: a second runtime whose threads would spin next to torch's)."""
    import sys

    from torch_utils import custom_ops

    if not sys.platform.startswith('linux') or 'ATen parallel backend: OpenMP' not in torch.__config__.parallel_info():
        return False
    cxx = custom_ops.find_compiler()
    return cxx is not None and 'clang' not in pathlib.Path(cxx).name


def _build_kwargs() -> dict:
    openmp = ['-fopenmp'] if _uses_gnu_openmp() else []
    return dict(
        extra_cflags=['-O3', '-march=native', '-ffp-contract=fast', '-fno-math-errno', *openmp],
        extra_ldflags=openmp,
    )


def _build() -> None:
    """Builds/loads the kernel and records the outcome in ``_state`` (runs once per process)."""
    from torch_utils import custom_ops

    try:
        module = custom_ops.get_plugin(
            'filtered_lrelu_cpu', [_SOURCE], source_dir=pathlib.Path(__file__).parent, **_build_kwargs()
        )
    except custom_ops.PluginBuildError as e:
        with _state_lock:
            _state['error'] = e
        _log.warning('filtered_lrelu: the fused CPU kernel is unavailable (%s); using the PyTorch path', e)
    except Exception as e:  # never let a background build kill the caller; report like a build error
        with _state_lock:
            _state['error'] = custom_ops.PluginBuildError(f'filtered_lrelu kernel: {type(e).__name__}: {e}')
        _log.warning('filtered_lrelu: the fused CPU kernel is unavailable (%s); using the PyTorch path', e)
    else:
        with _state_lock:
            _state['module'] = module


def plugin(raise_errors: bool = False, block: bool = True) -> types.ModuleType | None:
    """The compiled kernel module (building it on first use), or None when it cannot be built (yet).

    Args:
        raise_errors: Re-raise the build error instead of returning None (``impl='cpp'`` asked for explicitly).
        block: Wait for the build. ``block=False`` (``impl='auto'``) starts it in a background thread and returns
            None until it is loaded, so a first frame never waits for the compiler (~15-60 s on a small machine).

    Raises:
        torch_utils.custom_ops.PluginBuildError: Only with ``raise_errors``.
    """
    module = _state.get('module')  # lock-free fast path once loaded (set once, never removed)
    if module is not None:
        return module  # type: ignore[return-value]
    with _state_lock:
        decided = 'module' in _state or 'error' in _state
        thread = _state.get('thread')
        assert thread is None or isinstance(thread, threading.Thread)
        if not decided and thread is None:
            thread = threading.Thread(target=_build, name='filtered_lrelu_cpu-build', daemon=True)
            _state['thread'] = thread
            thread.start()
    if not decided and block and thread is not None:
        thread.join()
    if raise_errors and 'error' in _state:
        raise _state['error']  # type: ignore[misc]
    return _state.get('module')  # type: ignore[return-value]


def available() -> bool:
    """True when the kernel is loaded, or not yet tried and a compiler and ninja are present (cheap; never builds)."""
    if 'module' in _state:
        return True
    if 'error' in _state:
        return False
    import shutil

    from torch_utils import custom_ops

    return custom_ops.find_compiler() is not None and shutil.which('ninja') is not None


def supported(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    """Whether the kernel handles these arguments: float32 CPU, no autograd, fu 1-D/None, fd 1-D/2-D/None (square),
    and not while ``torch.compile`` traces (the kernel takes raw pointers, which the compiler cannot follow; the
    traced graph uses the plain-PyTorch path instead)."""
    if x.device.type != 'cpu' or x.dtype != torch.float32 or torch.compiler.is_compiling():
        return False
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, fu, fd, b)):
        return False
    if fu is not None and fu.ndim != 1:
        return False
    return fd is None or fd.ndim == 1 or (fd.ndim == 2 and fd.shape[0] == fd.shape[1])


def filtered_lrelu_cpp(
    module: types.ModuleType,
    x: torch.Tensor,
    fu: torch.Tensor | None,
    fd: torch.Tensor | None,
    b: torch.Tensor | None,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    gain: float,
    slope: float,
    clamp: float | None,
    flip_filter: bool,
) -> torch.Tensor:
    """Same contract as ``filtered_lrelu._filtered_lrelu_ref`` for :func:`supported` arguments."""
    px0, px1, py0, py1 = padding
    N, C, H, W = x.shape
    gu = (torch.ones([1]) if fu is None else fu.detach().float() * up).contiguous()  # gain up**2 over two passes
    gd = (torch.ones([1]) if fd is None else fd.detach().float()).contiguous()
    if not flip_filter:
        gu = gu.flip(list(range(gu.ndim))).contiguous()
        gd = gd.flip(list(range(gd.ndim))).contiguous()
    if fu is None:
        gu = gu * up  # fu None: the reference multiplies by gain up**2 as a [1, 1] filter
    Ku = gu.shape[0]
    Kd = gd.shape[0]
    Hm = H * up + py0 + py1 - Ku + 1
    Wm = W * up + px0 + px1 - Ku + 1
    Ho = (Hm - Kd) // down + 1
    Wo = (Wm - Kd) // down + 1
    x = x.detach().contiguous()
    bias = None if b is None else b.detach().to(torch.float32).contiguous()
    out = torch.empty([N, C, Ho, Wo], dtype=torch.float32)
    module.filtered_lrelu_fwd(
        x.data_ptr(),
        0 if bias is None else bias.data_ptr(),
        gu.data_ptr(),
        gd.data_ptr(),
        out.data_ptr(),
        N * C,
        C,
        H,
        W,
        Ku,
        Kd,
        Kd,
        gd.ndim == 2,
        up,
        down,
        px0,
        py0,
        Hm,
        Wm,
        Ho,
        Wo,
        float(slope),
        float(gain),
        -1.0 if clamp is None or clamp < 0 else float(clamp),
        torch.get_num_threads(),
    )
    return out
