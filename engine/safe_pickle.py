"""Unpicklers for network pickles: a safe one that never runs code from the file, and the trusted reference one.

Safe mode (`safe_load`): a restricted `pickle.Unpickler` that resolves only the globals a network pickle needs for
tensors, arrays and dicts (docs/compatibility.md §1). Persistent objects (`_reconstruct_persistent_obj(meta)`) are NOT
rebuilt from their embedded `module_src`: the source is read as text (`ast.parse`, never executed) only to learn
which module it is (StyleGAN2 networks, StyleGAN3 networks, augmentation pipeline) from the classes it defines.
The object is then rebuilt with OUR implementation of that class from its stored constructor arguments, and its
parameters, buffers and plain attributes are copied from the stored state. Anything else is refused with
`UnsafePickleError` naming what was refused.

Trusted mode (`trusted_load`): what the reference loader does -- executes the embedded sources -- plus the NumPy 1/2
module renames and CPU mapping of tensor storages.
"""

from __future__ import annotations

import _compat_pickle
import ast
import collections
import dataclasses
import importlib
import io
import logging
import pickle
from collections.abc import Callable, Iterable
from typing import IO, Any

import numpy as np
import torch

import dnnlib.util

logger = logging.getLogger(__name__)

# Stored attributes never copied onto a rebuilt module (besides every `_private` one: nn.Module internals and
# `_init_args` / `_init_kwargs`, which the constructor already got).
_SKIPPED_ATTRIBUTES = ('training', 'init_args', 'init_kwargs')


class LoadError(Exception):
    """A network could not be loaded; the message says what is wrong and how to fix it (shown to users as is)."""


class UnsafePickleError(LoadError):
    """Safe mode refused a pickle; `.names` lists the refused globals / classes."""

    def __init__(self, names: Iterable[str], detail: str = '') -> None:
        self.names = sorted(set(names))
        super().__init__(
            f'refused to load in safe mode: the pickle references {", ".join(self.names)}, which safe mode does not '
            'allow (it only rebuilds known StyleGAN2/StyleGAN3 networks and never runs code from the file)'
            + (f'; {detail}' if detail else '')
            + '. If you trust the file and its author, load it with trust=True (CLI: --trust); that executes code '
            'embedded in the file.'
        )


# ----------------------------------------------------------------------------
# Which embedded modules we recognise, and our implementation of each.


@dataclasses.dataclass(frozen=True)
class ModuleSignature:
    """An embedded module recognised by the classes its source defines (read as text), and our replacement.

    Attributes:
        kind: Short name used in messages, e.g. 'stylegan3'.
        required_classes: Top-level class names the embedded source must all define.
        our_module: Import path of our implementation, e.g. 'training.networks_stylegan3'.
    """

    kind: str
    required_classes: frozenset[str]
    our_module: str


DEFAULT_SIGNATURES: tuple[ModuleSignature, ...] = (
    ModuleSignature(
        'stylegan3',
        frozenset({'SynthesisInput', 'SynthesisLayer', 'SynthesisNetwork', 'MappingNetwork', 'Generator'}),
        'training.networks_stylegan3',
    ),
    ModuleSignature(
        'stylegan2',
        frozenset({'SynthesisBlock', 'ToRGBLayer', 'SynthesisNetwork', 'MappingNetwork', 'Generator'}),
        'training.networks_stylegan2',
    ),
    ModuleSignature('stylegan2', frozenset({'DiscriminatorBlock', 'Discriminator'}), 'training.networks_stylegan2'),
    ModuleSignature('augment', frozenset({'AugmentPipe'}), 'training.augment'),
)


def _defined_classes(module_src: str) -> frozenset[str]:
    """Top-level class names defined by a module source, from its syntax tree (the source is never executed)."""
    tree = ast.parse(module_src)
    return frozenset(node.name for node in tree.body if isinstance(node, ast.ClassDef))


def _numpy_core_name() -> str:
    return 'numpy._core' if int(np.__version__.split('.')[0]) >= 2 else 'numpy.core'


def remap_numpy_module(module: str) -> str:
    """Maps `numpy.core.*` <-> `numpy._core.*` to whichever the installed NumPy has (files from NumPy 1 and 2)."""
    for prefix in ('numpy.core', 'numpy._core'):
        if module == prefix or module.startswith(prefix + '.'):
            return _numpy_core_name() + module[len(prefix) :]
    return module


def _load_storage_from_bytes_safe(b: bytes) -> Any:
    """Replacement of `torch.storage._load_from_bytes`: the nested storage blob is read with `weights_only=True`."""
    if not isinstance(b, (bytes, bytearray)):
        raise UnsafePickleError(['torch.storage._load_from_bytes(<non-bytes>)'])
    return torch.load(io.BytesIO(b), weights_only=True, map_location='cpu')


def _load_storage_from_bytes_trusted(b: bytes) -> Any:
    return torch.load(io.BytesIO(b), weights_only=False, map_location='cpu')


def _codecs_encode(obj: Any, encoding: str = 'utf-8') -> bytes:
    """Safe `_codecs.encode`: only str -> bytes with a text encoding (how protocol-2 pickles store bytes)."""
    if not isinstance(obj, str) or encoding not in ('latin1', 'latin-1', 'utf-8', 'utf8', 'ascii'):
        raise UnsafePickleError([f'_codecs.encode({type(obj).__name__}, {encoding!r})'])
    return obj.encode(encoding)


# ----------------------------------------------------------------------------
# Safe mode.


class _PersistentStub:
    """A persistent object as stored in the file, not yet rebuilt: which class, from which module, and its state."""

    def __init__(self, class_name: str, signature: ModuleSignature, state: dict) -> None:
        self.class_name = class_name
        self.signature = signature
        self.state = state


def _refused_class(name: str, refused: list[str]) -> type:
    """A stand-in for a refused global: records the name and swallows every use, so unpickling can go on to
    collect all refused names; nothing from the file runs."""
    refused.append(name)

    class Refused:
        def __init__(self, *args, **kwargs):
            pass

        def __setstate__(self, state):
            pass

    return Refused


class SafeUnpickler(pickle.Unpickler):
    """Restricted unpickler for network pickles; see the module docstring. Use `safe_load()`."""

    def __init__(self, file: IO[bytes], signatures: Iterable[ModuleSignature] = DEFAULT_SIGNATURES) -> None:
        super().__init__(file)
        self.signatures = tuple(signatures)
        self.refused: list[str] = []
        self._classes_by_src: dict[str, frozenset[str] | None] = {}
        self._allowed: dict[tuple[str, str], Any] = {
            ('torch._utils', '_rebuild_tensor_v2'): torch._utils._rebuild_tensor_v2,
            ('torch._utils', '_rebuild_parameter'): torch._utils._rebuild_parameter,
            ('torch.storage', '_load_from_bytes'): _load_storage_from_bytes_safe,
            ('collections', 'OrderedDict'): collections.OrderedDict,
            ('builtins', 'set'): set,
            ('builtins', 'frozenset'): frozenset,
            ('_codecs', 'encode'): _codecs_encode,  # bytes in protocol-2 pickles
            ('dnnlib.util', 'EasyDict'): dnnlib.util.EasyDict,
            ('dnnlib', 'EasyDict'): dnnlib.util.EasyDict,
            ('numpy', 'dtype'): np.dtype,
            ('numpy', 'ndarray'): np.ndarray,
            (_numpy_core_name() + '.multiarray', 'scalar'): importlib.import_module(
                _numpy_core_name() + '.multiarray'
            ).scalar,
            (_numpy_core_name() + '.multiarray', '_reconstruct'): importlib.import_module(
                _numpy_core_name() + '.multiarray'
            )._reconstruct,
            ('torch_utils.persistence', '_reconstruct_persistent_obj'): self._reconstruct_persistent_obj,
        }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 names in protocol < 3 pickles
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        module = remap_numpy_module(module)
        found = self._allowed.get((module, name))
        if found is not None:
            return found
        if module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)  # dtypes such as torch.float16 (plain values)
        if module == 'torch' and name == 'Size':
            return torch.Size
        return _refused_class(f'{module}.{name}', self.refused)

    def persistent_load(self, pid: Any) -> Any:
        self.refused.append(f'persistent id {type(pid).__name__}')
        return None

    def _signature_of(self, module_src: str) -> ModuleSignature | None:
        if module_src not in self._classes_by_src:
            try:
                self._classes_by_src[module_src] = _defined_classes(module_src)
            except (SyntaxError, ValueError):
                self._classes_by_src[module_src] = None
        classes = self._classes_by_src[module_src]
        if classes is None:
            return None
        for signature in self.signatures:
            if signature.required_classes <= classes:
                return signature
        return None

    def _reconstruct_persistent_obj(self, meta: Any) -> Any:
        """Safe stand-in for `torch_utils.persistence._reconstruct_persistent_obj`: records, never executes."""
        if not isinstance(meta, dict) or not isinstance(meta.get('module_src'), str):
            self.refused.append('persistent object with malformed meta')
            return None
        class_name = meta.get('class_name')
        signature = self._signature_of(meta['module_src'])
        if meta.get('version') != 6 or meta.get('type') != 'class':
            raise LoadError(
                f'unsupported persistent object format (version {meta.get("version")!r}, type {meta.get("type")!r}); '
                'expected version 6 written by the StyleGAN2-ADA/StyleGAN3 tools'
            )
        if signature is None or not isinstance(class_name, str):
            classes = self._classes_by_src.get(meta['module_src'])
            where = f'a module defining {sorted(classes)[:8]}' if classes else 'an unrecognised module'
            self.refused.append(f'{class_name} (from {where})')
            return None
        if class_name not in (self._classes_by_src[meta['module_src']] or ()):
            self.refused.append(f'{class_name} (not defined by its embedded {signature.kind} source)')
            return None
        state = meta.get('state')
        if not isinstance(state, dict):
            self.refused.append(f'{class_name} with a non-dict state')
            return None
        return _PersistentStub(class_name, signature, state)


def safe_load(file: IO[bytes], signatures: Iterable[ModuleSignature] = DEFAULT_SIGNATURES) -> Any:
    """Unpickles a network pickle without executing anything from it.

    Args:
        file: Binary file object positioned at the pickle.
        signatures: Embedded modules to recognise (default: our StyleGAN2/3 networks and augmentation pipeline).

    Returns:
        The unpickled object, with every persistent object rebuilt as an instance of our implementation.

    Raises:
        UnsafePickleError: If the pickle references anything safe mode does not allow (all such names listed).
        LoadError: If a recognised network cannot be rebuilt with our implementation.
        pickle.UnpicklingError, EOFError, ...: On a corrupt or truncated stream (callers turn these into messages).
    """
    unpickler = SafeUnpickler(file, signatures)
    try:
        data = unpickler.load()
    except LoadError:
        raise
    except Exception:
        if unpickler.refused:
            raise UnsafePickleError(unpickler.refused) from None
        raise
    if unpickler.refused:
        raise UnsafePickleError(unpickler.refused)
    if isinstance(data, dict) and 'G_ema' in data:
        # A network pickle: only G_ema is essential; an extra our code cannot rebuild becomes None.
        for key, value in list(data.items()):
            try:
                data[key] = _materialize(value)
            except LoadError as e:
                if key == 'G_ema':
                    raise
                logger.warning('Safe mode could not rebuild %s (set to None): %s', key, e)
                data[key] = None
        return data
    return _materialize(data)


# ----------------------------------------------------------------------------
# Rebuilding persistent objects with our classes.


def _materialize(obj: Any) -> Any:
    """Replaces every top-level `_PersistentStub` in plain containers by a rebuilt object."""
    if isinstance(obj, _PersistentStub):
        return _rebuild(obj)
    if isinstance(obj, dict):
        for key, value in list(obj.items()):
            obj[key] = _materialize(value)
        return obj
    if isinstance(obj, list):
        return [_materialize(x) for x in obj]
    if isinstance(obj, tuple):
        return tuple(_materialize(x) for x in obj)
    return obj


def _contains_stub(obj: Any) -> bool:
    if isinstance(obj, _PersistentStub):
        return True
    if isinstance(obj, dict):
        return any(_contains_stub(v) for v in obj.values())
    if isinstance(obj, (list, tuple, set)):
        return any(_contains_stub(v) for v in obj)
    return False


def _our_class(stub: _PersistentStub) -> Callable:
    try:
        module = importlib.import_module(stub.signature.our_module)
    except ImportError as e:
        raise LoadError(
            f'cannot rebuild {stub.class_name} in safe mode: {stub.signature.our_module} is not available ({e})'
        ) from e
    cls = getattr(module, stub.class_name, None)
    if not isinstance(cls, type):
        raise UnsafePickleError(
            [f'{stub.class_name} (from {stub.signature.kind} source)'],
            f'our {stub.signature.our_module} has no class {stub.class_name}',
        )
    return cls


def _walk_stub(stub: _PersistentStub, prefix: str, tensors: dict, attrs: dict) -> None:
    """Collects the stored parameters/buffers (flattened names) and per-module state of a stub tree."""
    state = stub.state
    attrs[prefix] = stub
    for key in ('_parameters', '_buffers'):
        for name, tensor in (state.get(key) or {}).items():
            if tensor is not None:
                tensors[prefix + name] = tensor
    for name, child in (state.get('_modules') or {}).items():
        if isinstance(child, _PersistentStub):
            _walk_stub(child, f'{prefix}{name}.', tensors, attrs)
        elif child is not None:
            raise UnsafePickleError([f'{type(child).__name__} submodule {prefix}{name}'])


def _rebuild(stub: _PersistentStub) -> torch.nn.Module:
    """Constructs our class from the stored constructor arguments and copies the stored state into it."""
    cls = _our_class(stub)
    state = stub.state
    args = state.get('_init_args', state.get('init_args', ()))
    kwargs = state.get('_init_kwargs', state.get('init_kwargs', {}))
    if _contains_stub(args) or _contains_stub(kwargs):
        args, kwargs = _materialize(list(args)), _materialize(dict(kwargs))
    try:
        obj = cls(*args, **dict(kwargs))
    except Exception as e:
        raise LoadError(
            f'cannot rebuild {stub.class_name} with our implementation from its stored arguments ({e}); '
            'the file may come from an incompatible code version (try --trust if you trust it)'
        ) from e
    if not isinstance(obj, torch.nn.Module):
        return obj

    tensors: dict[str, torch.Tensor] = {}
    substubs: dict[str, _PersistentStub] = {}
    _walk_stub(stub, '', tensors, substubs)

    ours = dict(list(obj.named_parameters()) + list(obj.named_buffers()))
    missing = sorted(set(ours) - set(tensors))
    unexpected = sorted(set(tensors) - set(ours))
    if missing or unexpected:
        raise LoadError(
            f'the stored {stub.class_name} does not match our implementation: missing {missing[:5]}, unexpected '
            f'{unexpected[:5]}; the file may come from a different code version (try --trust if you trust it)'
        )
    modules = dict(obj.named_modules())
    with torch.no_grad():
        for name, tensor in tensors.items():
            dst = ours[name]
            if tuple(dst.shape) != tuple(tensor.shape):
                raise LoadError(
                    f'the stored {stub.class_name} tensor {name} has shape {list(tensor.shape)}, ours '
                    f'{list(dst.shape)}; the file may come from a different code version (try --trust)'
                )
            dst.copy_(tensor.detach().to(dst.dtype))
        for prefix, sub in substubs.items():
            module = modules.get(prefix[:-1] if prefix else '')
            if module is None or type(module).__name__ != sub.class_name:
                raise LoadError(
                    f'the stored submodule {prefix[:-1] or "<top>"} is a {sub.class_name}, ours is '
                    f'{type(module).__name__ if module is not None else "missing"}'
                )
            _restore_attributes(module, sub.state)
    return obj


def _restore_attributes(module: torch.nn.Module, state: dict) -> None:
    """Copies the plain (non-module) attributes of a stored state onto our module, and its training flag."""
    module.training = bool(state.get('training', module.training))
    for key, value in state.items():
        if key.startswith('_') or key in _SKIPPED_ATTRIBUTES:
            continue
        if _contains_stub(value) or isinstance(value, torch.nn.Module):
            continue
        if key in module._parameters or key in module._buffers or key in module._modules:
            continue
        if hasattr(type(module), key):
            continue  # never shadow a method or property of our class
        if key in module.__dict__ and not _same_kind(module.__dict__[key], value):
            continue  # our constructor made it from the same arguments; keep our representation
        object.__setattr__(module, key, value)


def _same_kind(ours: Any, stored: Any) -> bool:
    numbers = (int, float, np.number)
    if isinstance(ours, numbers) and not isinstance(ours, bool):
        return isinstance(stored, numbers) and not isinstance(stored, bool)
    return type(ours) is type(stored)


# ----------------------------------------------------------------------------
# Trusted mode.


class TrustedUnpickler(pickle.Unpickler):
    """The reference behaviour (executes embedded module sources), plus NumPy 1/2 renames and CPU storages."""

    def find_class(self, module: str, name: str) -> Any:
        module = remap_numpy_module(module)
        if (module, name) == ('torch.storage', '_load_from_bytes'):
            return _load_storage_from_bytes_trusted
        if module in ('dnnlib.util', 'dnnlib') and name == 'EasyDict':
            return dnnlib.util.EasyDict
        return super().find_class(module, name)


def trusted_load(file: IO[bytes]) -> Any:
    """Unpickles like the reference loader. EXECUTES CODE EMBEDDED IN THE FILE; only for files you trust."""
    return TrustedUnpickler(file).load()
