"""When the Triton path (``impl='triton'``) can run, and how ``impl='auto'`` falls back from it (private).

Nothing here imports Triton at package import: :func:`kernels` imports ``_triton_kernels`` on the first call that
needs it. ``impl='auto'`` picks Triton for CUDA tensors of float16/bfloat16/float32 when Triton imports; the first
launch of each op compiles its kernel, and if that fails the op warns once (with the reason) and uses ``'ref'``
for the rest of the process. On CPU tensors the kernels run only when Triton's interpreter was enabled
(``TRITON_INTERPRET=1`` in the environment before the first import) and only when asked for explicitly.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
import types
from collections.abc import Callable

import torch

_log = logging.getLogger(__name__)
DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_lock = threading.Lock()
_state: dict[str, object] = {}  # 'module' or 'error' (import outcome); process-wide memo like _cpu_kernels'
_failed: dict[str, str] = {}  # op -> reason its first launch failed ('auto' then uses 'ref')
_verified: set[str] = set()  # ops whose kernels launched successfully at least once
_warned: set[str] = set()
_generation = [0]  # bumped whenever what 'auto' picks changes (a failed import or kernel); see ops.impl_generation


def generation() -> int:
    """Changes whenever an automatic choice changed (Triton failed to import, or an op's kernel to compile)."""
    return _generation[0]


def installed() -> bool:
    """True when Triton is importable or already imported (cheap: looks for the package, imports nothing)."""
    if 'module' in _state:
        return True
    if 'error' in _state:
        return False
    return importlib.util.find_spec('triton') is not None


def kernels(raise_errors: bool = False) -> types.ModuleType | None:
    """The ``_triton_kernels`` module (importing Triton on first use), or None when Triton does not import.

    Raises:
        ImportError: Only with ``raise_errors``, naming the fix (``pip install triton``).
    """
    module = _state.get('module')
    if module is None and 'error' not in _state:
        with _lock:
            if 'module' not in _state and 'error' not in _state:
                try:
                    _state['module'] = importlib.import_module('torch_utils.ops._triton_kernels')
                except Exception as e:  # ImportError, or a broken install raising anything at import
                    _state['error'] = f'{type(e).__name__}: {e}'
                    _generation[0] += 1
        module = _state.get('module')
    if module is None and raise_errors:
        raise ImportError(
            f"impl='triton' needs the triton package ({_state['error']}); install it with `pip install triton` "
            "(Linux; `triton-windows` on Windows) or use impl='auto'"
        )
    return module  # type: ignore[return-value]


def loaded() -> types.ModuleType:
    """The kernel module after :func:`auto_applies` or :func:`check_explicit` said yes."""
    module = _state.get('module')
    assert isinstance(module, types.ModuleType)
    return module


def interpreted() -> bool:
    """True when the kernels were (or, when not yet imported, would be) built for Triton's CPU interpreter."""
    module = _state.get('module')
    if module is not None:
        return bool(module.INTERPRETED)  # type: ignore[attr-defined]
    import os

    return os.environ.get('TRITON_INTERPRET', '0') == '1'


def check_explicit(func: str, x: torch.Tensor, *filters: torch.Tensor | None) -> types.ModuleType:
    """Validates an explicit ``impl='triton'`` call and returns the kernel module.

    Raises:
        ImportError: Triton is not installed.
        ValueError: The tensors are not on CUDA (or CPU in interpreter mode), the dtype is not
            float16/bfloat16/float32, or a filter requires a gradient (the kernels do not differentiate filters).
    """
    module = kernels(raise_errors=True)
    assert module is not None
    if not (x.device.type == 'cuda' or (x.device.type == 'cpu' and interpreted())):
        raise ValueError(
            f"{func}(): impl='triton' needs CUDA tensors (CPU tensors only under TRITON_INTERPRET=1), got "
            f"{x.device.type}; use impl='auto'"
        )
    if x.dtype not in DTYPES:
        raise ValueError(f"{func}(): impl='triton' supports float16, bfloat16 and float32, got {x.dtype}")
    if any(f is not None and f.requires_grad for f in filters):
        raise ValueError(f"{func}(): impl='triton' does not differentiate the filters; use impl='ref' for that")
    return module


def auto_applies(func: str, x: torch.Tensor, *filters: torch.Tensor | None) -> bool:
    """Whether ``impl='auto'`` should try Triton for this call (CUDA, supported dtype, constant filters, Triton
    imports, and the op's kernel has not failed before). Warns once when CUDA runs without Triton installed."""
    if x.device.type != 'cuda' or x.dtype not in DTYPES or func in _failed:
        return False
    if any(f is not None and f.requires_grad for f in filters):
        return False
    if kernels() is None:
        if 'import' not in _warned:
            _warned.add('import')
            _log.warning(
                "Triton is unavailable (%s): the CUDA ops run impl='ref' (plain PyTorch); `pip install triton` "
                'for the fast kernels',
                _state.get('error'),
            )
        return False
    return True


def run_auto(func: str, triton_fn: Callable[[], torch.Tensor], ref_fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Runs ``triton_fn``; until the op's kernel has launched once, a failure (compiler error, unsupported GPU)
    warns once, marks the op failed and runs ``ref_fn`` instead. Out-of-memory errors always propagate."""
    if func in _verified:
        return triton_fn()
    try:
        out = triton_fn()
    except torch.OutOfMemoryError:
        raise
    except Exception as e:
        _failed[func] = f'{type(e).__name__}: {e}'
        _generation[0] += 1
        _log.warning("%s(): the Triton kernel failed to compile or launch (%s); using impl='ref'", func, _failed[func])
        return ref_fn()
    _verified.add(func)
    return out


def report(func: str) -> bool:
    """True when ``impl='auto'`` would run Triton for ``func`` on CUDA (installed, not failed); never imports."""
    return func not in _failed and installed()
