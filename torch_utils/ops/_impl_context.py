"""Scoped default implementation for ``impl='auto'`` (a ``contextvars.ContextVar``; private, see ``ops.default_impl``)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

IMPLS = ('auto', 'ref', 'fast', 'cpp', 'triton')
_default: contextvars.ContextVar[str] = contextvars.ContextVar('torch_utils_ops_default_impl', default='auto')


def current() -> str:
    """The implementation ``impl='auto'`` calls should use in this context ('auto' = pick the fastest).

    Under ``torch.compile`` the value is read once while tracing and baked into the graph (TorchDynamo cannot
    trace ``ContextVar.get`` and would split the graph at every op): compile inside the ``default_impl`` block
    that should apply, and recompile to change it."""
    return _default.get()


# What torch.compiler.assume_constant_result(current) does, without importing TorchDynamo (seconds) at op import.
current._dynamo_marked_constant = True  # type: ignore[attr-defined]


@contextlib.contextmanager
def default_impl(impl: str) -> Iterator[None]:
    """Within the block, op calls with ``impl='auto'`` run ``impl`` instead (where the op has it; ops without it
    keep their own 'auto' choice). Thread- and asyncio-safe; restored on exit, also on exceptions.

    Args:
        impl: 'auto', 'ref', 'fast', 'cpp' or 'triton'.

    Raises:
        ValueError: Unknown ``impl``.
    """
    if impl not in IMPLS:
        raise ValueError(f'default_impl(): impl must be one of {list(IMPLS)}, got {impl!r}')
    token = _default.set(impl)
    try:
        yield
    finally:
        _default.reset(token)
