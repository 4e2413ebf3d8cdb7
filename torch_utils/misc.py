"""Small PyTorch helpers used by the networks, the training loop and the tools.

The names and keyword arguments of `assert_shape`, `constant`, `suppress_tracer_warnings` and `profiled_function`
are part of the pickle-compatibility contract (docs/compatibility.md §2): sources embedded in network pickles
call them.
"""

from __future__ import annotations

import contextlib
import functools
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

# ----------------------------------------------------------------------------
# Cached constants.

# Cache of constant tensors keyed by (value bytes, shape, dtype, device, memory_format). Pure memoisation: the
# returned tensors are never modified by callers, so the cache cannot change behaviour.
_constant_cache: dict[tuple, torch.Tensor] = {}


def constant(
    value: Any,
    shape: Sequence[int] | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    memory_format: torch.memory_format | None = None,
) -> torch.Tensor:
    """Returns a cached constant tensor (created once per value/shape/dtype/device/memory format).

    Args:
        value: Anything `np.asarray` accepts (scalar, list, ndarray).
        shape: Broadcast the value to this shape; None keeps the value's shape.
        dtype: Tensor dtype; None means `torch.get_default_dtype()`.
        device: Tensor device; None means CPU.
        memory_format: None means `torch.contiguous_format`.

    Returns:
        A tensor that callers must treat as read-only.
    """
    value = np.asarray(value)
    if shape is not None:
        shape = tuple(shape)
    if dtype is None:
        dtype = torch.get_default_dtype()
    if device is None:
        device = torch.device('cpu')
    device = torch.device(device)
    if memory_format is None:
        memory_format = torch.contiguous_format

    key = (value.shape, value.dtype, value.tobytes(), shape, dtype, device, memory_format)
    tensor = _constant_cache.get(key, None)
    if tensor is None:
        tensor = torch.as_tensor(value.copy(), dtype=dtype, device=device)
        if shape is not None:
            tensor, _ = torch.broadcast_tensors(tensor, torch.empty(shape))
        tensor = tensor.contiguous(memory_format=memory_format)
        _constant_cache[key] = tensor
    return tensor


# ----------------------------------------------------------------------------
# Shape assertions and tracing.


@contextlib.contextmanager
def suppress_tracer_warnings() -> Iterator[None]:
    """Context manager that silences `torch.jit.TracerWarning` (e.g. from shape checks while tracing)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
        yield


def assert_shape(tensor: torch.Tensor, ref_shape: Sequence[int | torch.Tensor | None]) -> None:
    """Asserts that `tensor` has the shape `ref_shape`; None entries match any size.

    Works under `torch.jit.trace` (sizes may be tensors there).

    Raises:
        AssertionError: On a different rank or a mismatching size (the reference raises AssertionError too).
    """
    if tensor.ndim != len(ref_shape):
        raise AssertionError(f'Wrong number of dimensions: got {tensor.ndim}, expected {len(ref_shape)}')
    for idx, (size, ref_size) in enumerate(zip(tensor.shape, ref_shape)):
        if ref_size is None:
            continue
        if isinstance(ref_size, torch.Tensor):
            with suppress_tracer_warnings():
                torch._assert(torch.equal(torch.as_tensor(size), ref_size), f'Wrong size for dimension {idx}')
        elif isinstance(size, torch.Tensor):
            with suppress_tracer_warnings():
                torch._assert(
                    torch.equal(size, torch.as_tensor(ref_size)), f'Wrong size for dimension {idx}: expected {ref_size}'
                )
        elif size != ref_size:
            raise AssertionError(f'Wrong size for dimension {idx}: got {size}, expected {ref_size}')


def profiled_function(fn: Callable) -> Callable:
    """Decorator that names the function's time range in the autograd profiler."""

    @functools.wraps(fn)
    def decorator(*args, **kwargs):
        with torch.autograd.profiler.record_function(fn.__name__):
            return fn(*args, **kwargs)

    return decorator


# ----------------------------------------------------------------------------
# Sampling.


class InfiniteSampler(torch.utils.data.Sampler):
    """Endless index sampler for a DataLoader, split between `num_replicas` processes.

    With `shuffle`, the order is a seeded random permutation that keeps being locally reshuffled: at step i the
    current index swaps with one at most `window_size * len(dataset)` steps ahead, so every epoch differs.

    Args:
        dataset: Any sized dataset.
        rank: This process's index in [0, num_replicas).
        num_replicas: Number of processes sharing the dataset.
        shuffle: Randomise the order.
        seed: Seed of the permutation and swaps.
        window_size: Swap window as a fraction of the dataset size, in [0, 1].

    Raises:
        ValueError: On an empty dataset or out-of-range rank/num_replicas/window_size.
    """

    def __init__(
        self,
        dataset: Any,
        rank: int = 0,
        num_replicas: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        window_size: float = 0.5,
    ) -> None:
        if len(dataset) <= 0:
            raise ValueError(f'InfiniteSampler(): dataset must not be empty, got len {len(dataset)}')
        if num_replicas <= 0:
            raise ValueError(f'InfiniteSampler(): num_replicas must be > 0, got {num_replicas}')
        if not 0 <= rank < num_replicas:
            raise ValueError(f'InfiniteSampler(): rank must be in [0, {num_replicas}), got {rank}')
        if not 0 <= window_size <= 1:
            raise ValueError(f'InfiniteSampler(): window_size must be in [0, 1], got {window_size}')
        super().__init__()
        self.dataset = dataset
        self.rank = rank
        self.num_replicas = num_replicas
        self.shuffle = shuffle
        self.seed = seed
        self.window_size = window_size

    def __iter__(self) -> Iterator[int]:
        order = np.arange(len(self.dataset))
        rnd = None
        window = 0
        if self.shuffle:
            rnd = np.random.RandomState(self.seed)
            rnd.shuffle(order)
            window = int(np.rint(order.size * self.window_size))

        idx = 0
        while True:
            i = idx % order.size
            if idx % self.num_replicas == self.rank:
                yield int(order[i])
            if window >= 2:
                assert rnd is not None
                j = (i - rnd.randint(window)) % order.size
                order[i], order[j] = order[j], order[i]
            idx += 1


# ----------------------------------------------------------------------------
# Parameters and buffers.


def named_params_and_buffers(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Returns `[(name, tensor), ...]` of all parameters followed by all buffers (recursively)."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f'named_params_and_buffers(): module must be a torch.nn.Module, got {type(module).__name__}')
    return list(module.named_parameters()) + list(module.named_buffers())


def params_and_buffers(module: torch.nn.Module) -> list[torch.Tensor]:
    """Returns all parameters followed by all buffers of `module` (recursively)."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f'params_and_buffers(): module must be a torch.nn.Module, got {type(module).__name__}')
    return list(module.parameters()) + list(module.buffers())


@torch.no_grad()
def copy_params_and_buffers(
    src_module: torch.nn.Module, dst_module: torch.nn.Module, require_all: bool = False
) -> None:
    """Copies every parameter and buffer of `src_module` into the same-named one of `dst_module` in place.

    `requires_grad` of the destination is kept.

    Raises:
        TypeError: If either argument is not a module.
        KeyError: If `require_all` and the source lacks a tensor the destination has.
    """
    if not isinstance(src_module, torch.nn.Module) or not isinstance(dst_module, torch.nn.Module):
        raise TypeError('copy_params_and_buffers(): src_module and dst_module must be torch.nn.Module instances')
    src_tensors = dict(named_params_and_buffers(src_module))
    for name, tensor in named_params_and_buffers(dst_module):
        if name in src_tensors:
            tensor.copy_(src_tensors[name].detach()).requires_grad_(tensor.requires_grad)
        elif require_all:
            raise KeyError(f'copy_params_and_buffers(): source module has no tensor named {name!r}')


# ----------------------------------------------------------------------------
# Distributed helpers (no-ops without torch.distributed).


@contextlib.contextmanager
def ddp_sync(module: torch.nn.Module, sync: bool) -> Iterator[None]:
    """Context manager: inside, a DistributedDataParallel `module` skips gradient all-reduce unless `sync`."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f'ddp_sync(): module must be a torch.nn.Module, got {type(module).__name__}')
    if sync or not isinstance(module, torch.nn.parallel.DistributedDataParallel):
        yield
    else:
        with module.no_sync():
            yield


def check_ddp_consistency(module: torch.nn.Module, ignore_regex: str | None = None) -> None:
    """Checks that every parameter and buffer equals rank 0's copy (no-op unless torch.distributed is running).

    Raises:
        AssertionError: Naming the first tensor that differs between ranks.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    for name, tensor in named_params_and_buffers(module):
        fullname = type(module).__name__ + '.' + name
        if ignore_regex is not None and re.fullmatch(ignore_regex, fullname):
            continue
        tensor = tensor.detach()
        if tensor.is_floating_point():
            tensor = torch.nan_to_num(tensor)
        other = tensor.clone()
        torch.distributed.broadcast(tensor=other, src=0)
        if not (tensor == other).all():
            raise AssertionError(f'check_ddp_consistency(): {fullname} differs from rank 0')


# ----------------------------------------------------------------------------
# Module summary.


def _shape_str(t: torch.Tensor) -> str:
    return str(list(t.shape))


def print_module_summary(
    module: torch.nn.Module, inputs: Sequence[Any], max_nesting: int = 3, skip_redundant: bool = True
) -> Any:
    """Runs `module(*inputs)` once and prints a table: submodule, parameters, buffers, output shape and dtype.

    Args:
        module: The module to run (not in training-specific mode changes; runs under `torch.no_grad` is up to you).
        inputs: Positional inputs for `module`.
        max_nesting: Deepest submodule level listed.
        skip_redundant: Hide rows without own parameters/buffers whose output equals the next row's.

    Returns:
        The module's outputs.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f'print_module_summary(): module must be a torch.nn.Module, got {type(module).__name__}')
    if isinstance(module, torch.jit.ScriptModule):
        raise TypeError('print_module_summary(): module must not be a torch.jit.ScriptModule')
    if not isinstance(inputs, (tuple, list)):
        raise TypeError(f'print_module_summary(): inputs must be a tuple or list, got {type(inputs).__name__}')

    entries: list[dict[str, Any]] = []
    nesting = [0]

    def pre_hook(_mod, _inputs):
        nesting[0] += 1

    def post_hook(mod, _inputs, outputs):
        nesting[0] -= 1
        if nesting[0] <= max_nesting:
            outs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
            outs = [t for t in outs if isinstance(t, torch.Tensor)]
            entries.append(dict(mod=mod, outputs=outs))

    hooks = [m.register_forward_pre_hook(pre_hook) for m in module.modules()]
    hooks += [m.register_forward_hook(post_hook) for m in module.modules()]
    try:
        outputs = module(*inputs)
    finally:
        for h in hooks:
            h.remove()

    # Count each tensor once, at the innermost module that ran.
    tensors_seen: set[int] = set()
    for e in entries:
        e['params'] = [t for t in e['mod'].parameters() if id(t) not in tensors_seen]
        e['buffers'] = [t for t in e['mod'].buffers() if id(t) not in tensors_seen]
        tensors_seen |= {id(t) for t in e['params'] + e['buffers']}
    if skip_redundant:
        entries = [e for e in entries if len(e['params']) or len(e['buffers']) or len(e['outputs'])]

    names = {mod: name for name, mod in module.named_modules()}
    rows = [[type(module).__name__, 'Parameters', 'Buffers', 'Output shape', 'Datatype']]
    rows += [['---'] * len(rows[0])]
    param_total = buffer_total = 0
    for e in entries:
        name = '<top-level>' if e['mod'] is module else names.get(e['mod'], '?')
        param_size = sum(t.numel() for t in e['params'])
        buffer_size = sum(t.numel() for t in e['buffers'])
        output_shapes = [_shape_str(t) for t in e['outputs']]
        output_dtypes = [str(t.dtype).split('.')[-1] for t in e['outputs']]
        rows.append(
            [
                name + (':0' if len(e['outputs']) >= 2 else ''),
                str(param_size) if param_size else '-',
                str(buffer_size) if buffer_size else '-',
                (output_shapes + ['-'])[0],
                (output_dtypes + ['-'])[0],
            ]
        )
        for idx in range(1, len(e['outputs'])):
            rows.append([name + f':{idx}', '-', '-', output_shapes[idx], output_dtypes[idx]])
        param_total += param_size
        buffer_total += buffer_size
    rows += [['---'] * len(rows[0])]
    rows += [['Total', str(param_total), str(buffer_total), '-', '-']]

    widths = [max(len(cell) for cell in column) for column in zip(*rows)]
    print()
    for row in rows:
        print('  '.join(cell + ' ' * (width - len(cell)) for cell, width in zip(row, widths)))
    print()
    return outputs
