"""Persistent classes: pickles that carry the source code of the class they were made from.

A class decorated with `@persistent_class` remembers the full source of its defining module. Its instances pickle
as a call of `torch_utils.persistence._reconstruct_persistent_obj(meta)` with (docs/compatibility.md §1)::

    meta = dict(type='class', version=6, module_src=<module source>, class_name=<name>, state=<instance __dict__>)

so a network pickle still loads after the code that wrote it changed or is gone: loading executes `module_src`
as a fresh module. That is exactly the format the reference tools write and read, in both directions.

Security: `_reconstruct_persistent_obj` EXECUTES CODE FROM THE FILE. Only call `pickle.load` on files you trust;
`engine.loading.load_network_pkl` (safe mode, the default) never gets here and rebuilds known classes instead.
"""

from __future__ import annotations

import copy
import inspect
import io
import pickle
import sys
import types
import uuid
from collections.abc import Callable
from typing import Any

# Format version of the pickled `meta` dict (the reference writes and requires 6).
_version = 6

# Registries. These are caches and explicit registrations, not behaviour toggles: the decorated classes, the hooks
# users registered with `import_hook`, and the module <-> source maps (identical sources are executed once).
_decorators: set[type] = set()
_import_hooks: list[Callable[[Any], Any]] = []
_module_to_src_dict: dict[types.ModuleType, str] = {}
_src_to_module_dict: dict[str, types.ModuleType] = {}


def persistent_class(orig_class: type) -> type:
    """Class decorator: instances pickle together with the source code of the class's module.

    The decorated class records the positional and keyword arguments of its constructor (deep-copied) and exposes
    them as `init_args` / `init_kwargs`; a pickle stores them in the instance state as `_init_args` /
    `_init_kwargs`. The defining module must be a real source file, and everything the constructor is given must be
    picklable.

    Example::

        @persistence.persistent_class
        class MyNetwork(torch.nn.Module):
            def __init__(self, num_inputs, num_outputs): ...

    Args:
        orig_class: The class to decorate.

    Returns:
        A subclass of `orig_class` with the same name (or `orig_class` itself if it is already persistent).

    Raises:
        TypeError: If `orig_class` is not a class.
    """
    if not isinstance(orig_class, type):
        raise TypeError(f'persistent_class(): orig_class must be a class, got {type(orig_class).__name__}')
    if is_persistent(orig_class):
        return orig_class

    orig_module = sys.modules[orig_class.__module__]
    orig_module_src = _module_to_src(orig_module)

    class Decorator(orig_class):  # type: ignore[valid-type, misc]
        _orig_module_src = orig_module_src
        _orig_class_name = orig_class.__name__

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_args = copy.deepcopy(args)
            self._init_kwargs = copy.deepcopy(kwargs)
            assert orig_class.__name__ in orig_module.__dict__
            _check_pickleable(self.__reduce__())

        @property
        def init_args(self):
            return copy.deepcopy(self._init_args)

        @property
        def init_kwargs(self):
            return copy.deepcopy(self._init_kwargs)

        def __reduce__(self):
            fields = list(super().__reduce__())
            fields += [None] * max(3 - len(fields), 0)
            if fields[0] is not _reconstruct_persistent_obj:
                meta = dict(
                    type='class',
                    version=_version,
                    module_src=self._orig_module_src,
                    class_name=self._orig_class_name,
                    state=fields[2],
                )
                fields[0] = _reconstruct_persistent_obj  # reconstruct function
                fields[1] = (meta,)  # its arguments
                fields[2] = None  # no separate state
            return tuple(fields)

    Decorator.__name__ = orig_class.__name__
    Decorator.__qualname__ = orig_class.__qualname__
    Decorator.__module__ = orig_class.__module__
    Decorator.__doc__ = orig_class.__doc__
    _decorators.add(Decorator)
    return Decorator


def is_persistent(obj: Any) -> bool:
    """True if `obj` is a persistent class or an instance of one."""
    try:
        if obj in _decorators:
            return True
    except TypeError:  # unhashable
        pass
    return type(obj) in _decorators


def import_hook(hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Registers `hook(meta) -> meta`, called on every persistent object's `meta` before it is loaded.

    Hooks may patch `meta.module_src` or `meta.state` to make old pickles load with newer code. `meta` is an
    EasyDict with the fields of the module docstring; `meta.state` is an EasyDict too. Usable as a decorator.

    Raises:
        TypeError: If `hook` is not callable.
    """
    if not callable(hook):
        raise TypeError(f'import_hook(): hook must be callable, got {type(hook).__name__}')
    _import_hooks.append(hook)
    return hook


def _reconstruct_persistent_obj(meta: Any) -> Any:
    """Unpickling entry point of persistent objects. EXECUTES `meta['module_src']` (once per distinct source)."""
    from dnnlib.util import EasyDict

    meta = EasyDict(meta)
    meta.state = EasyDict(meta.state)
    for hook in _import_hooks:
        meta = hook(meta)
        assert meta is not None, 'persistence.import_hook(): a hook returned None instead of meta'

    if meta.version != _version:
        raise ValueError(f'_reconstruct_persistent_obj(): meta.version must be {_version}, got {meta.version}')
    if meta.type != 'class':
        raise ValueError(f"_reconstruct_persistent_obj(): meta.type must be 'class', got {meta.type!r}")
    module = _src_to_module(meta.module_src)
    orig_class = module.__dict__[meta.class_name]
    decorator_class: Any = persistent_class(orig_class)
    obj = decorator_class.__new__(decorator_class)

    setstate = getattr(obj, '__setstate__', None)
    if callable(setstate):
        setstate(meta.state)
    else:
        obj.__dict__.update(meta.state)
    return obj


def _module_to_src(module: types.ModuleType) -> str:
    """Source code of a module (cached)."""
    src = _module_to_src_dict.get(module, None)
    if src is None:
        src = inspect.getsource(module)
        _module_to_src_dict[module] = src
        _src_to_module_dict[src] = module
    return src


def _src_to_module(src: str) -> types.ModuleType:
    """Module made by executing `src` under a unique name in `sys.modules` (cached per distinct source)."""
    module = _src_to_module_dict.get(src, None)
    if module is None:
        module_name = '_imported_module_' + uuid.uuid4().hex
        module = types.ModuleType(module_name)
        sys.modules[module_name] = module
        _module_to_src_dict[module] = src
        _src_to_module_dict[src] = module
        exec(src, module.__dict__)  # noqa: S102 -- this is what loading a trusted pickle means
    return module


def _is_array_or_tensor(obj: Any) -> bool:
    torch = sys.modules.get('torch', None)
    numpy = sys.modules.get('numpy', None)
    return (torch is not None and isinstance(obj, torch.Tensor)) or (
        numpy is not None and isinstance(obj, numpy.ndarray)
    )


def _check_pickleable(obj: Any) -> None:
    """Raises if `obj` (the constructor arguments of a persistent object) cannot be pickled.

    Tensors, arrays and nested persistent objects are skipped (they pickle by construction).
    """

    def recurse(obj):
        if isinstance(obj, (list, tuple, set)):
            return [recurse(x) for x in obj]
        if isinstance(obj, dict):
            return [[recurse(x), recurse(y)] for x, y in obj.items()]
        if isinstance(obj, (str, int, float, bool, bytes, bytearray)):
            return None  # Python primitive types are pickleable.
        if _is_array_or_tensor(obj):
            return None  # NumPy arrays and PyTorch tensors are pickleable.
        if is_persistent(obj):
            return None  # Persistent objects are pickleable by virtue of the constructor check.
        return obj

    with io.BytesIO() as f:
        pickle.dump(recurse(obj), f)
