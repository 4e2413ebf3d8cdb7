"""Unpicklers for network pickles: a safe one that never runs code from the file, and the trusted reference one.

Safe mode (`safe_load`), in this order:

1. `engine.pickle_scan.scan_pickle` walks the opcodes without building anything and refuses streams nested too
   deep or expanding too far through shared references (reference bombs).
2. A restricted `pickle.Unpickler` resolves only the globals a network pickle needs for tensors, arrays and dicts
   (docs/compatibility.md §1). NumPy arrays are rebuilt through a guard that refuses object dtypes and checks that the
   stored bytes match the claimed shape before NumPy allocates anything. Persistent objects
   (`_reconstruct_persistent_obj(meta)`) are NOT rebuilt from their embedded `module_src`: the source is read as
   text (`ast.parse`, never executed) only to learn which module it is (StyleGAN2 networks, StyleGAN3 networks,
   augmentation pipeline) from the classes it defines.
3. Each network is rebuilt with OUR implementation of its class, from its stored constructor arguments after
   `engine.network_args.check_init_args` checked every one against a type and a range. Construction runs under an
   allocation budget derived from the file size (a file cannot hold more parameters than it has bytes), checked
   before each allocation. Only the stored parameters and buffers whose names and shapes our construction expects
   are copied; every other attribute (layer lists, filter sizes, up/down factors, ...) is what our constructor
   computed, never a value from the file.

Anything else is refused with `UnsafePickleError` (naming what was refused) or `ResourceLimitError` (naming the
limit).

Trusted mode (`trusted_load`): what the reference loader does -- executes the embedded sources -- plus the NumPy 1/2
module renames and CPU mapping of tensor storages.
"""

from __future__ import annotations

import _compat_pickle
import ast
import collections
import dataclasses
import functools
import importlib
import io
import logging
import math
import pickle
import re
import threading
from collections.abc import Callable, Iterable
from typing import IO, Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import dnnlib.util
from engine.load_errors import LoadError, ResourceLimitError, UnsafePickleError
from engine.pickle_scan import ScanLimits, scan_pickle

logger = logging.getLogger(__name__)

__all__ = [
    'DEFAULT_SIGNATURES',
    'LoadError',
    'ModuleSignature',
    'ResourceLimitError',
    'ScanLimits',
    'UnsafePickleError',
    'safe_load',
    'scan_pickle',
    'trusted_load',
]

# Allocation budget while rebuilding a network: what the file's bytes can hold, plus headroom for temporaries.
_BUDGET_FACTOR = 3
_BUDGET_SLACK_BYTES = 64 << 20


# ----------------------------------------------------------------------------
# Which embedded modules we recognise, and our implementation of each.


@dataclasses.dataclass(frozen=True)
class ModuleSignature:
    """An embedded module recognised by the classes its source defines (read as text), and our replacement.

    Attributes:
        kind: Short name used in messages, e.g. 'stylegan3'.
        required_classes: Top-level class names the embedded source must all define.
        our_module: Import path of our implementation, e.g. 'training.networks_stylegan3'.
        validate_args: `(kind, class_name, cls, args, kwargs) -> None`, raising `LoadError` on arguments our class
            must not be built with; None = `engine.network_args.check_init_args` (our networks' ranges).
    """

    kind: str
    required_classes: frozenset[str]
    our_module: str
    validate_args: Callable[[str, str, type, Any, Any], Any] | None = None


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


# CPython 3.11 keeps the AST converter's recursion depth per interpreter, not per thread: two threads in ast.parse()
# at once (the network cache loads pickles in threads, e.g. the Checkpoints pane's preload beside the shown network)
# can fail with "SystemError: AST constructor recursion depth mismatch" (CPython issue gh-106905). One parse at a time.
_AST_LOCK = threading.Lock()


@functools.lru_cache(maxsize=16)
def _defined_classes(module_src: str) -> frozenset[str]:
    """Top-level class names defined by a module source, from its syntax tree (the source is never executed).
    Cached: every snapshot of a run carries the same network source."""
    with _AST_LOCK:
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


class _ClaimGlobal:
    """A global named in a nested tensor blob, recorded by name and never resolved or called for real."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        return None


class _StorageClaims(pickle.Unpickler):
    """Reads the `data.pkl` of a nested `torch.save` archive only to list its storages (type, key, claimed size)."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self.claims: list[tuple[str, str, int]] = []

    def find_class(self, module: str, name: str) -> Any:
        return _ClaimGlobal(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == 'storage'):
            raise UnsafePickleError([f'nested tensor blob with persistent id {type(pid).__name__}'])
        kind = pid[1].name if isinstance(pid[1], _ClaimGlobal) else str(pid[1])
        if not isinstance(pid[2], str) or not isinstance(pid[4], int) or pid[4] < 0:
            raise UnsafePickleError(['nested tensor blob with a malformed storage record'])
        self.claims.append((kind, pid[2], pid[4]))
        return None


def _storage_itemsize(kind: str) -> int:
    """Bytes per element of a storage type name such as 'FloatStorage' (1 for 'UntypedStorage')."""
    storage_type = getattr(torch, kind, None)
    dtype = getattr(storage_type, 'dtype', None)
    if kind == 'UntypedStorage':
        return 1
    if not isinstance(dtype, torch.dtype):
        raise UnsafePickleError([f'torch.{kind} in a nested tensor blob'])
    return torch.empty((), dtype=dtype).element_size()


def _check_storage_claims(b: bytes) -> None:
    """Refuses a nested `torch.save` zip whose storages claim more bytes than their records hold, or compressed
    records, before torch allocates anything (a 100-byte blob must not ask for gigabytes)."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(b)) as z:
        infos = {info.filename: info for info in z.infolist()}
        data_pkl = [name for name in infos if name.endswith('/data.pkl') or name == 'data.pkl']
        if len(data_pkl) != 1:
            raise UnsafePickleError(['nested tensor blob without exactly one data.pkl'])
        prefix = data_pkl[0][: -len('data.pkl')]
        for info in infos.values():
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(b):
                raise ResourceLimitError(
                    f'a nested tensor blob record {info.filename} is compressed or claims {info.file_size:,} bytes in '
                    f'a {len(b):,}-byte blob (torch writes stored records only): a damaged or hostile file?'
                )
        raw = z.read(data_pkl[0])
    scan_pickle(io.BytesIO(raw))
    reader = _StorageClaims(io.BytesIO(raw))
    reader.load()
    for kind, key, numel in reader.claims:
        record = infos.get(f'{prefix}data/{key}')
        have = record.file_size if record is not None else 0
        need = numel * _storage_itemsize(kind)
        if need > have:
            raise ResourceLimitError(
                f'a nested tensor storage claims {numel:,} elements ({need:,} bytes) but its record holds {have:,} '
                'bytes (limit: the bytes in the file): a damaged or hostile file?'
            )


def _load_storage_from_bytes_safe(b: bytes) -> Any:
    """Replacement of `torch.storage._load_from_bytes`: storage claims are checked against the bytes present, then
    the nested storage blob is read with `weights_only=True` (torch's restricted unpickler)."""
    if not isinstance(b, (bytes, bytearray)):
        raise UnsafePickleError(['torch.storage._load_from_bytes(<non-bytes>)'])
    b = bytes(b)
    if b[:4] == b'PK\x03\x04':
        _check_storage_claims(b)
    try:
        return torch.load(io.BytesIO(b), weights_only=True, map_location='cpu')
    except pickle.UnpicklingError as e:
        # torch's own refusal ends with advice to set weights_only=False, which is not ours to give: name the global.
        text = str(e)
        found = re.search(r'(?:Unsupported global|Unsupported operand|global)[:\s]+(?:GLOBAL\s+)?([\w.]+)', text)
        what = found.group(1) if found else 'something torch refuses in weights-only mode'
        raise UnsafePickleError([f'{what} (inside a nested tensor blob)']) from None


def _load_storage_from_bytes_trusted(b: bytes) -> Any:
    return torch.load(io.BytesIO(b), weights_only=False, map_location='cpu')


def _codecs_encode(obj: Any, encoding: str = 'utf-8') -> bytes:
    """Safe `_codecs.encode`: only str -> bytes with a text encoding (how protocol-2 pickles store bytes)."""
    if not isinstance(obj, str) or encoding not in ('latin1', 'latin-1', 'utf-8', 'utf8', 'ascii'):
        raise UnsafePickleError([f'_codecs.encode({type(obj).__name__}, {encoding!r})'])
    return obj.encode(encoding)


_MAX_ARRAY_DIMS = 32


class _GuardedArray(np.ndarray):
    """An ndarray while it is unpickled: its state is checked before NumPy allocates (`safe_load` then turns it into
    a plain ndarray)."""

    def __setstate__(self, state: Any) -> None:
        _check_array_state(state)
        super().__setstate__(state)


def _check_dtype(dtype: Any) -> np.dtype:
    if not isinstance(dtype, np.dtype):
        raise UnsafePickleError([f'numpy data of dtype {type(dtype).__name__}'])
    if dtype.hasobject:
        raise UnsafePickleError(['numpy object array'], 'safe mode reads numeric arrays only (object arrays hold code)')
    return dtype


def _check_array_state(state: Any) -> None:
    """Checks a pickled ndarray state `(version, shape, dtype, is_fortran, raw)` before NumPy allocates it."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise UnsafePickleError(['numpy array with a malformed state'])
    shape, dtype, raw = state[-4], state[-3], state[-1]
    _check_dtype(dtype)
    ok = isinstance(shape, tuple) and len(shape) <= _MAX_ARRAY_DIMS
    if not ok or any(not isinstance(n, int) or n < 0 for n in shape):
        raise UnsafePickleError([f'numpy array with shape {str(shape)[:60]}'])
    if not isinstance(raw, (bytes, bytearray)):
        raise UnsafePickleError(
            [f'numpy array data of type {type(raw).__name__}'], 'safe mode reads numeric arrays only'
        )
    need = math.prod(shape) * dtype.itemsize
    if need != len(raw):
        raise ResourceLimitError(
            f'a numpy array claims shape {shape} ({need:,} bytes) but stores {len(raw):,} bytes (limit: the bytes '
            'in the file): a damaged or hostile file?'
        )


def _safe_reconstruct(subtype: Any, shape: Any = (0,), dtype: Any = b'b') -> np.ndarray:
    """`numpy.core.multiarray._reconstruct` for plain ndarrays only; the real contents come with `__setstate__`."""
    if subtype is not np.ndarray:
        raise UnsafePickleError([f'numpy array subclass {getattr(subtype, "__name__", type(subtype).__name__)}'])
    return np.ndarray.__new__(_GuardedArray, (0,), np.uint8)


def _safe_dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    """`numpy.dtype(spec, align, copy)` for short type codes of non-object types only."""
    if not isinstance(spec, str) or len(spec) > 8:
        raise UnsafePickleError([f'numpy dtype {str(spec)[:40]}'])
    return _check_dtype(np.dtype(spec, bool(align), bool(copy)))


def _make_safe_scalar(scalar: Callable) -> Callable:
    def safe_scalar(dtype: Any, data: Any = None) -> Any:
        """`numpy.core.multiarray.scalar(dtype, bytes)` for numeric dtypes with exactly one item of bytes."""
        _check_dtype(dtype)
        if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
            raise UnsafePickleError([f'numpy scalar data of type {type(data).__name__}'])
        return scalar(dtype, data)

    return safe_scalar


class _AllocationBudget(TorchDispatchMode):
    """Refuses tensor allocations beyond `budget` bytes while a network is built (checked BEFORE factory functions
    allocate; other new storages are counted after). What a file can justify: its parameters are all in it."""

    def __init__(self, budget: int, what: str) -> None:
        super().__init__()
        self.budget, self.what, self.used = budget, what, 0
        self.seen: set[int] = set()

    def _add(self, nbytes: int) -> None:
        self.used += nbytes
        if self.used > self.budget:
            raise ResourceLimitError(
                f'building {self.what} needs more than {self.budget / 2**20:,.0f} MiB of tensors (limit: '
                f'{_BUDGET_FACTOR}x the file size + {_BUDGET_SLACK_BYTES >> 20} MiB), more than the file can hold: its '
                'constructor arguments do not match its contents (a damaged or hostile file?)'
            )

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        size = args[0] if args else kwargs.get('size')
        counted = False
        if isinstance(size, (list, tuple)) and all(isinstance(n, int) for n in size) and size:
            dtype = kwargs.get('dtype') or torch.get_default_dtype()
            self._add(math.prod(max(int(n), 0) for n in size) * torch.empty((), dtype=dtype).element_size())
            counted = True
        out = func(*args, **kwargs)
        inputs = {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor)}
        for t in out if isinstance(out, (list, tuple)) else [out]:
            if isinstance(t, torch.Tensor) and t.device.type != 'meta':
                ptr = t.untyped_storage().data_ptr()
                if ptr not in inputs and ptr not in self.seen:
                    self.seen.add(ptr)
                    if not counted:
                        self._add(t.untyped_storage().nbytes())
        return out


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
            ('numpy', 'dtype'): _safe_dtype,
            ('numpy', 'ndarray'): np.ndarray,
            (_numpy_core_name() + '.multiarray', 'scalar'): _make_safe_scalar(
                importlib.import_module(_numpy_core_name() + '.multiarray').scalar
            ),
            (_numpy_core_name() + '.multiarray', '_reconstruct'): _safe_reconstruct,
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


def safe_load(
    file: IO[bytes], signatures: Iterable[ModuleSignature] = DEFAULT_SIGNATURES, limits: ScanLimits | None = None
) -> Any:
    """Unpickles a network pickle without executing anything from it, within resource limits.

    Args:
        file: Binary file object positioned at the pickle (read to its end; seekable files are scanned in place).
        signatures: Embedded modules to recognise (default: our StyleGAN2/3 networks and augmentation pipeline).
        limits: Nesting/expansion limits of the pre-scan (default `ScanLimits()`).

    Returns:
        The unpickled object, with every persistent object rebuilt as an instance of our implementation and every
        NumPy array a plain numeric ndarray.

    Raises:
        UnsafePickleError: If the pickle references anything safe mode does not allow (all such names listed).
        ResourceLimitError: If the stream or a network it describes exceeds a limit (named in the message).
        LoadError: If a recognised network cannot be rebuilt with our implementation.
        pickle.UnpicklingError, EOFError, ...: On a corrupt or truncated stream (callers turn these into messages).
    """
    if not file.seekable():
        file = io.BytesIO(file.read())
    start = file.tell()
    num_bytes = file.seek(0, io.SEEK_END) - start
    file.seek(start)
    scan_pickle(file, limits)
    file.seek(start)
    budget = _BUDGET_FACTOR * num_bytes + _BUDGET_SLACK_BYTES
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
        memo: dict[int, Any] = {}
        for key, value in list(data.items()):
            try:
                data[key] = _materialize(value, budget, memo)
            except ResourceLimitError:
                raise
            except LoadError as e:
                if key == 'G_ema':
                    raise
                logger.warning('Safe mode could not rebuild %s (set to None): %s', key, e)
                data[key] = None
        return data
    return _materialize(data, budget, {})


# ----------------------------------------------------------------------------
# Rebuilding persistent objects with our classes.


def _materialize(obj: Any, budget: int, memo: dict[int, Any]) -> Any:
    """Replaces every `_PersistentStub` in plain containers by a rebuilt object and every guarded array by a plain
    ndarray. Shared objects are processed once (`memo`, by id); the pre-scan bounded the nesting depth."""
    key = id(obj)
    if key in memo:
        return memo[key]
    result = obj
    if isinstance(obj, _PersistentStub):
        result = _rebuild(obj, budget)
    elif isinstance(obj, _GuardedArray):
        result = obj.view(np.ndarray)
    elif isinstance(obj, dict):
        memo[key] = obj  # containers keep their identity (a cycle ends here)
        for k, value in list(obj.items()):
            obj[k] = _materialize(value, budget, memo)
    elif isinstance(obj, list):
        memo[key] = obj
        obj[:] = [_materialize(x, budget, memo) for x in obj]
    elif isinstance(obj, tuple):
        result = tuple(_materialize(x, budget, memo) for x in obj)
        if all(a is b for a, b in zip(result, obj, strict=True)):
            result = obj
    memo[key] = result
    return result


def _contains_stub(obj: Any, depth: int = 0) -> bool:
    if depth > 8:
        return True  # constructor arguments are flat; anything this deep is refused by the argument checks anyway
    if isinstance(obj, _PersistentStub):
        return True
    if isinstance(obj, dict):
        return any(_contains_stub(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple, set)):
        return any(_contains_stub(v, depth + 1) for v in obj)
    return False


def _our_class(stub: _PersistentStub) -> type:
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


def _walk_stub(stub: _PersistentStub, prefix: str, tensors: dict, subs: dict, depth: int = 0) -> None:
    """Collects the stored parameters/buffers (flattened names) and the per-module stubs of a stub tree."""
    if depth > 32:
        raise ResourceLimitError(f'the stored modules nest deeper than 32 levels at {prefix[:80]} (limit)')
    state = stub.state
    subs[prefix] = stub
    for key in ('_parameters', '_buffers'):
        stored = state.get(key) or {}
        if not isinstance(stored, dict):
            raise UnsafePickleError([f'{key} of type {type(stored).__name__} in {prefix or "<top>"}'])
        for name, tensor in stored.items():
            if tensor is not None:
                tensors[f'{prefix}{name}'] = tensor
    children = state.get('_modules') or {}
    if not isinstance(children, dict):
        raise UnsafePickleError([f'_modules of type {type(children).__name__} in {prefix or "<top>"}'])
    for name, child in children.items():
        if isinstance(child, _PersistentStub):
            _walk_stub(child, f'{prefix}{name}.', tensors, subs, depth + 1)
        elif child is not None:
            raise UnsafePickleError([f'{type(child).__name__} submodule {prefix}{name}'])


def _construct(stub: _PersistentStub, budget: int) -> Any:
    """Our class built from the stored constructor arguments, after checking them, under an allocation budget."""
    from engine import network_args

    cls = _our_class(stub)
    state = stub.state
    args = state.get('_init_args', state.get('init_args', ()))
    kwargs = state.get('_init_kwargs', state.get('init_kwargs', {}))
    if _contains_stub(args) or _contains_stub(kwargs):
        raise UnsafePickleError([f'{stub.class_name} with networks among its constructor arguments'])
    validate = stub.signature.validate_args or network_args.check_init_args
    validate(stub.signature.kind, stub.class_name, cls, args, kwargs)
    try:
        with _AllocationBudget(budget, stub.class_name):
            return cls(*args, **dict(kwargs))
    except LoadError:
        raise
    except Exception as e:
        raise LoadError(
            f'cannot rebuild {stub.class_name} with our implementation from its stored arguments ({e}); '
            'the file may come from an incompatible code version (try --trust if you trust it)'
        ) from e


def _rebuild(stub: _PersistentStub, budget: int) -> torch.nn.Module:
    """Constructs our class and copies in exactly the stored parameters and buffers our construction expects.

    No other attribute is taken from the file: layer lists, sizes, filter taps, up/down factors and every other
    derived value are what our constructor computed from the checked arguments. Only the train/eval flag of each
    module is restored.
    """
    obj = _construct(stub, budget)
    if not isinstance(obj, torch.nn.Module):
        raise UnsafePickleError([f'{stub.class_name} (not a network)'])

    tensors: dict[str, Any] = {}
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
            if not isinstance(tensor, torch.Tensor):
                raise UnsafePickleError([f'{type(tensor).__name__} stored as tensor {name}'])
            if tuple(dst.shape) != tuple(tensor.shape):
                raise LoadError(
                    f'the stored {stub.class_name} tensor {name} has shape {list(tensor.shape)}, ours '
                    f'{list(dst.shape)}; the file may come from a different code version (try --trust)'
                )
            if not (tensor.is_floating_point() or tensor.dtype in (torch.int64, torch.int32, torch.bool)):
                raise UnsafePickleError([f'tensor {name} of dtype {tensor.dtype}'])
            dst.copy_(tensor.detach().to(dst.dtype))
        for prefix, sub in substubs.items():
            module = modules.get(prefix[:-1] if prefix else '')
            if module is None or type(module).__name__ != sub.class_name:
                raise LoadError(
                    f'the stored submodule {prefix[:-1] or "<top>"} is a {sub.class_name}, ours is '
                    f'{type(module).__name__ if module is not None else "missing"}'
                )
            training = sub.state.get('training', module.training)
            module.training = training if isinstance(training, bool) else module.training
    return obj


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
