"""Validated constructor arguments of the networks safe mode rebuilds (bounds on the work a file can ask for).

A network pickle stores each network's constructor arguments (`init_args` / `init_kwargs`); safe mode rebuilds the
network by calling OUR constructor with them (see `engine.safe_pickle`). Those arguments decide how much memory and
time construction takes (`w_dim=40000` asks for gigabytes, `num_layers=10**7` never finishes), so every argument
is checked here against a type and a range BEFORE anything is built. The ranges are generous: every published
StyleGAN2/StyleGAN2-ADA/StyleGAN3 configuration (resolutions 4..1024 px, w_dim 512, 2..8 mapping layers, 14
synthesis layers, channel_base up to 65536) is well inside them. Each refusal names the argument, the limit and
the value. Only top-level classes a network pickle holds (generators, the discriminator, the augmentation pipeline,
mapping/synthesis networks) are rebuilt; their inner layers are made by our constructors, never from the file.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from engine.load_errors import LoadError, ResourceLimitError, UnsafePickleError

__all__ = ['TOP_LEVEL_CLASSES', 'check_init_args']

# Classes a network pickle may hold at its top level, per embedded module kind (everything else is refused).
TOP_LEVEL_CLASSES: dict[str, frozenset[str]] = {
    'stylegan3': frozenset({'Generator', 'MappingNetwork', 'SynthesisNetwork'}),
    'stylegan2': frozenset({'Generator', 'MappingNetwork', 'SynthesisNetwork', 'Discriminator'}),
    'augment': frozenset({'AugmentPipe'}),
}

# Largest nesting of keyword dicts (synthesis_kwargs -> block_kwargs ...).
_MAX_KWARGS_DEPTH = 3

Checker = Callable[[str, Any], None]


def _fail(name: str, requirement: str, value: Any) -> ResourceLimitError:
    text = repr(value)
    return ResourceLimitError(
        f'constructor argument {name} must be {requirement}, got {text[:60] + "..." if len(text) > 60 else text}; '
        'the file asks for a network outside the limits safe mode builds (a damaged or hostile file?)'
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _int(lo: int, hi: int) -> Checker:
    def check(name: str, value: Any) -> None:
        if not _is_int(value) or not lo <= int(value) <= hi:
            raise _fail(name, f'an integer in [{lo}, {hi}]', value)

    return check


def _real(lo: float, hi: float) -> Checker:
    def check(name: str, value: Any) -> None:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
        if not ok or not lo <= float(value) <= hi:
            raise _fail(name, f'a finite number in [{lo:g}, {hi:g}]', value)

    return check


def _bool(name: str, value: Any) -> None:
    if not isinstance(value, (bool, int)) or isinstance(value, numbers.Integral) and int(value) not in (0, 1):
        raise _fail(name, 'a boolean', value)


def _choice(*allowed: Any) -> Checker:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, (str, bool)) or value not in allowed:
            raise _fail(name, f'one of {list(allowed)}', value)

    return check


def _optional(inner: Checker) -> Checker:
    def check(name: str, value: Any) -> None:
        if value is not None:
            inner(name, value)

    return check


def _reals(min_len: int, max_len: int, lo: float, hi: float) -> Checker:
    item = _real(lo, hi)

    def check(name: str, value: Any) -> None:
        if not isinstance(value, (list, tuple)) or not min_len <= len(value) <= max_len:
            raise _fail(name, f'a list of {min_len}..{max_len} numbers', value)
        for i, x in enumerate(value):
            item(f'{name}[{i}]', x)

    return check


def _activation(name: str, value: Any) -> None:
    from torch_utils.ops import bias_act

    if not isinstance(value, str) or value not in bias_act.activation_funcs:
        raise _fail(name, f'one of {sorted(bias_act.activation_funcs)}', value)


_DIM = _int(1, 4096)
_FRACTION = _real(0.0, 1.0)
_AUG = _real(0.0, 1e3)

# Every argument a top-level network constructor accepts (directly or forwarded through **kwargs / *_kwargs).
_ARGS: dict[str, Checker] = {
    # Shared.
    'z_dim': _DIM,
    'c_dim': _int(0, 65536),
    'w_dim': _DIM,
    'img_resolution': _int(4, 4096),
    'img_channels': _int(1, 4),
    'channel_base': _int(1, 1 << 21),
    'channel_max': _DIM,
    'num_fp16_res': _int(0, 16),
    'conv_clamp': _optional(_real(1e-6, 1e9)),
    # Mapping networks.
    'num_layers': _int(0, 64),
    'num_ws': _int(1, 128),
    'embed_features': _optional(_int(0, 4096)),
    'layer_features': _optional(_DIM),
    'activation': _activation,
    'lr_multiplier': _real(0.0, 1e3),
    'w_avg_beta': _optional(_FRACTION),
    # StyleGAN3 synthesis (Alias-Free GAN Sec. 3.2, App. F).
    'num_critical': _int(0, 64),
    'first_cutoff': _real(1e-3, 4096),
    'first_stopband': _real(1e-3, 4096),
    'last_stopband_rel': _real(1e-3, 64),
    'margin_size': _int(0, 256),
    'output_scale': _real(-1e3, 1e3),
    'conv_kernel': _int(1, 7),
    'filter_size': _int(1, 16),
    'lrelu_upsampling': _int(1, 8),
    'use_radial_filters': _bool,
    'magnitude_ema_beta': _FRACTION,
    # StyleGAN2 synthesis and discriminator.
    'architecture': _choice('orig', 'skip', 'resnet'),
    'resample_filter': _reals(1, 16, -1e3, 1e3),
    'kernel_size': _int(1, 7),
    'use_noise': _bool,
    'channels_last': _bool,
    'fp16_channels_last': _bool,
    'fused_modconv_default': _choice(True, False, 'inference_only'),
    'cmap_dim': _optional(_int(0, 4096)),
    'freeze_layers': _int(0, 64),
    'mbstd_group_size': _optional(_int(1, 256)),
    'mbstd_num_channels': _int(0, 64),
    # Augmentation pipeline (probabilities and strengths).
    **{
        name: _AUG
        for name in (
            'xflip rotate90 xint xint_max scale rotate aniso xfrac scale_std rotate_max aniso_std xfrac_std '
            'brightness contrast lumaflip hue saturation brightness_std contrast_std hue_max saturation_std '
            'imgfilter imgfilter_std noise cutout noise_std cutout_size'
        ).split()
    },
    'imgfilter_bands': _reals(4, 4, 0.0, 1e3),
}

# Keyword dicts forwarded to inner constructors; their keys are checked with the same table.
_NESTED = ('mapping_kwargs', 'synthesis_kwargs', 'block_kwargs', 'epilogue_kwargs')


def _check_kwargs(where: str, kwargs: Mapping, depth: int) -> None:
    if depth > _MAX_KWARGS_DEPTH:
        raise ResourceLimitError(
            f'{where}: keyword dicts nested deeper than {_MAX_KWARGS_DEPTH} levels (limit); a damaged or hostile file?'
        )
    for key, value in kwargs.items():
        if not isinstance(key, str):
            raise UnsafePickleError([f'constructor argument name of type {type(key).__name__}'])
        if key in _NESTED:
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise _fail(f'{where}.{key}', 'a dict or None', value)
            _check_kwargs(f'{where}.{key}', value, depth + 1)
            continue
        checker = _ARGS.get(key)
        if checker is None:
            raise LoadError(
                f'cannot rebuild {where.split(".")[0]}: unknown constructor argument {where}.{key} (safe mode passes '
                'only the arguments our network constructors know); the file may come from a different code version '
                '(try --trust if you trust it)'
            )
        checker(f'{where}.{key}', value)


def check_init_args(kind: str, class_name: str, cls: type, args: Any, kwargs: Any) -> dict[str, Any]:
    """Checks stored constructor arguments against the types and ranges above; returns them as keyword arguments.

    Args:
        kind: Embedded module kind ('stylegan3', 'stylegan2', 'augment').
        class_name: Class the file asks for.
        cls: Our class of that name (positional arguments are bound to its constructor's parameter names).
        args: Stored positional arguments (a tuple or list).
        kwargs: Stored keyword arguments (a dict).

    Returns:
        All arguments as one keyword dict (positional ones named), to call `cls(**result)`.

    Raises:
        UnsafePickleError: Class not rebuilt at the top level by safe mode.
        LoadError: An argument name our constructors do not take.
        ResourceLimitError: An argument of the wrong type or outside its range (the message names the limit).
    """
    if class_name not in TOP_LEVEL_CLASSES.get(kind, frozenset()):
        raise UnsafePickleError(
            [f'{class_name} (from {kind} source) at the top level'],
            f'safe mode rebuilds only {sorted(TOP_LEVEL_CLASSES.get(kind, ()))} from stored arguments',
        )
    if not isinstance(args, (tuple, list)) or not isinstance(kwargs, Mapping):
        raise UnsafePickleError([f'{class_name} with init_args of type {type(args).__name__}'])
    if len(args) > 16 or len(kwargs) > 64:
        raise ResourceLimitError(
            f'{class_name}: {len(args)} positional / {len(kwargs)} keyword constructor arguments exceed the limits '
            '(16 / 64); a damaged or hostile file?'
        )
    orig = next((c for c in cls.__mro__ if '_orig_class_name' not in c.__dict__ and c.__name__ == class_name), cls)
    params = [p for p in inspect.signature(orig).parameters.values() if p.kind == p.POSITIONAL_OR_KEYWORD]
    if len(args) > len(params):
        raise UnsafePickleError([f'{class_name} with {len(args)} positional arguments'])
    merged: dict[str, Any] = {p.name: a for p, a in zip(params, args, strict=False)}
    for key, value in kwargs.items():
        if key in merged:
            raise UnsafePickleError([f'{class_name} argument {key!r} given twice'])
        merged[key] = value
    _check_kwargs(class_name, merged, 0)
    return merged
