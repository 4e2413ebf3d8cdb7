"""Legacy TensorFlow StyleGAN2 / StyleGAN2-ADA network pickles, read safely and rebuilt as our PyTorch networks.

The format is described in our own words in `docs/legacy_tf_format.md`. In short: the file is a pickled tuple
`(G, D, Gs)` of `dnnlib.tflib.network.Network` objects whose state is a plain dict (`version`, `name`,
`static_kwargs`, `components`, `build_module_src`, `build_func_name`, `variables` = [(name, numpy array)]).

Reading is SAFE: a restricted unpickler resolves only NumPy array/dtype reconstruction, `collections.OrderedDict`,
`dnnlib` EasyDicts and the single class name `dnnlib.tflib.network.Network`, which becomes the inert data holder
`TFNetwork`. The TensorFlow source in `build_module_src` is kept as text and never executed. The networks are then
built with our StyleGAN2 code (`training.networks_stylegan2`) from `static_kwargs` and filled from the variables:

- dense weights [in, out] are transposed to [out, in];
- convolution weights [kh, kw, I, O] become [O, I, kh, kw]; the up-sampling convolution (`Conv0_up`) and the
  generator's residual `Skip` weights were stored for a transposed convolution and are also flipped in both
  spatial axes;
- the style affine bias `mod_bias` is stored without the +1 our affine bias holds (StyleGAN2 Sec. 2.2: styles
  start at 1);
- everything else is copied unscaled: both codes apply the equalised-learning-rate gains at run time
  (Karras et al. 2018, "Progressive Growing of GANs", Sec. 4.1).

Example::

    from engine.legacy_tf import is_tf_pickle, load_tf_network_pkl
    with open('stylegan2-ffhq-config-f.pkl', 'rb') as f:
        data = load_tf_network_pkl(f)   # {'G', 'D', 'G_ema', 'training_set_kwargs': None, 'augment_pipe': None}
"""

from __future__ import annotations

import collections
import importlib
import logging
import pickle
import re
from collections.abc import Callable
from typing import IO, Any

import numpy as np
import torch

import dnnlib.util
from engine.safe_pickle import LoadError, UnsafePickleError, remap_numpy_module

__all__ = [
    'TFNetwork',
    'convert_tf_discriminator',
    'convert_tf_generator',
    'flatten_variables',
    'is_tf_pickle',
    'load_tf_network_pkl',
    'read_tf_networks',
]

logger = logging.getLogger(__name__)

TF_NETWORK_CLASS = ('dnnlib.tflib.network', 'Network')
SUPPORTED_VERSION = 4  # StyleGAN2 and StyleGAN2-ADA (TensorFlow); StyleGAN1 wrote 3.
_HEAD_BYTES = 1 << 16
_MAX_DEPTH = 4  # Network components nest one level (G -> mapping/synthesis); allow a little more.
_STATE_KEYS = frozenset(
    {'version', 'name', 'static_kwargs', 'components', 'build_module_src', 'build_func_name', 'variables'}
)

# Constructor arguments a StyleGAN2(-ADA) TF network may record. Those that shape the network are read below; the
# rest only steered TensorFlow graph building or training and do not change what the weights compute.
_SHAPE_KEYS = frozenset(
    {
        'resolution', 'num_channels', 'label_size', 'latent_size', 'dlatent_size', 'fmap_base', 'fmap_max',
        'fmap_min', 'fmap_decay', 'mapping_layers', 'mapping_fmaps', 'mapping_lrmul', 'mapping_nonlinearity',
        'architecture', 'resample_kernel', 'nonlinearity', 'num_fp16_res', 'conv_clamp', 'use_noise', 'w_avg_beta',
        'dlatent_avg_beta', 'label_fmaps', 'mbstd_group_size', 'mbstd_num_features', 'normalize_latents',
        'dlatent_broadcast', 'cmap_dim',
    }
)  # fmt: skip
_IGNORED_KEYS = frozenset(
    {
        'truncation_psi', 'truncation_cutoff', 'truncation_psi_val', 'truncation_cutoff_val', 'style_mixing_prob',
        'is_training', 'is_validation', 'is_template_graph', 'components', 'mapping_func', 'synthesis_func',
        'return_dlatents', 'randomize_noise', 'dtype', 'fused_modconv', 'structure', 'force_clean_graph',
        'num_gpus', 'use_fp16', 'conv_clamp_val', 'freeze_layers', 'mbstd_num_channels', 'update_emas',
        'augment_pipe', 'func_name', 'fp16_res', 'D_architecture', 'G_architecture',
    }
)  # fmt: skip


# ----------------------------------------------------------------------------
# Reading.


class TFNetwork:
    """Inert data holder for a pickled `dnnlib.tflib.network.Network` (nothing of TensorFlow is imported or run).

    Attributes:
        version: Format version (4 = StyleGAN2/ADA).
        name: Network name, e.g. 'G', 'D', 'Gs'.
        static_kwargs: Constructor arguments recorded by the TF code (a plain dict).
        components: Sub-networks by key (G/Gs: 'mapping', 'synthesis'; D: none).
        build_func_name: Name of the TF build function (text only).
        build_module_src: TensorFlow source text; NEVER executed.
        variables: [(name, np.ndarray)] of this network's own variables.
    """

    def __init__(self) -> None:
        self.version: int = 0
        self.name = ''
        self.static_kwargs: dict = {}
        self.components: dict[str, TFNetwork] = {}
        self.build_func_name = ''
        self.build_module_src = ''
        self.variables: list[tuple[str, np.ndarray]] = []

    def __setstate__(self, state: Any) -> None:
        self.__init__()  # type: ignore[misc]
        if not isinstance(state, dict):
            raise LoadError(f'a TensorFlow Network holds a {type(state).__name__} state, expected a dict')
        unknown = sorted(set(map(str, state)) - _STATE_KEYS)
        if unknown:
            logger.info('Ignoring unknown TensorFlow Network state keys %s', unknown)
        self.version = state.get('version', 0)
        self.name = str(state.get('name', ''))
        self.static_kwargs = dict(state.get('static_kwargs') or {})
        self.components = dict(state.get('components') or {})
        self.build_func_name = str(state.get('build_func_name', ''))
        self.build_module_src = str(state.get('build_module_src', ''))
        self.variables = list(state.get('variables') or [])


def _np_dtype(*args: Any) -> np.dtype:
    """`numpy.dtype` for plain numeric types only (object and structured dtypes could smuggle references)."""
    dtype = np.dtype(*args)
    if dtype.kind not in 'biufc':
        raise UnsafePickleError([f'numpy.dtype({dtype.str})'], 'TensorFlow weights are plain numeric arrays')
    return dtype


class _TFUnpickler(pickle.Unpickler):
    """Restricted unpickler for TF pickles: arrays, dicts and the Network data holder; nothing else resolves."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        core = importlib.import_module(remap_numpy_module('numpy.core') + '.multiarray')
        self.refused: list[str] = []
        self._allowed: dict[tuple[str, str], Any] = {
            TF_NETWORK_CLASS: TFNetwork,
            ('numpy', 'dtype'): _np_dtype,
            ('numpy', 'ndarray'): np.ndarray,
            (remap_numpy_module('numpy.core.multiarray'), '_reconstruct'): core._reconstruct,
            (remap_numpy_module('numpy.core.multiarray'), 'scalar'): core.scalar,
            ('collections', 'OrderedDict'): collections.OrderedDict,
            ('dnnlib.util', 'EasyDict'): dnnlib.util.EasyDict,
            ('dnnlib', 'EasyDict'): dnnlib.util.EasyDict,
            ('_codecs', 'encode'): _codecs_encode,
            ('copyreg', '_reconstructor'): _reconstructor,
            ('copy_reg', '_reconstructor'): _reconstructor,
            ('__builtin__', 'object'): object,
            ('builtins', 'object'): object,
        }

    def find_class(self, module: str, name: str) -> Any:
        found = self._allowed.get((remap_numpy_module(module), name))
        if found is None:
            self.refused.append(f'{module}.{name}')
            raise UnsafePickleError(self.refused, 'a TensorFlow network pickle only needs arrays and Network data')
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError([f'persistent id {type(pid).__name__}'])


def _codecs_encode(obj: Any, encoding: str = 'utf-8') -> bytes:
    if not isinstance(obj, str) or encoding not in ('latin1', 'latin-1', 'utf-8', 'utf8', 'ascii'):
        raise UnsafePickleError([f'_codecs.encode({type(obj).__name__}, {encoding!r})'])
    return obj.encode(encoding)


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """`copyreg._reconstructor` (protocol 0/1 pickles) for our data holder only."""
    if cls is not TFNetwork or base is not object or state is not None:
        raise UnsafePickleError([f'copyreg._reconstructor({getattr(cls, "__name__", cls)!r})'])
    return TFNetwork.__new__(TFNetwork)


def is_tf_pickle(file: IO[bytes]) -> bool:
    """Whether a binary file looks like a legacy TF network pickle (its first 64 KiB name the TF Network class).

    The file position is restored.
    """
    pos = file.tell()
    try:
        head = file.read(_HEAD_BYTES)
    finally:
        file.seek(pos)
    return head[:1] == b'\x80' and b'dnnlib.tflib.network' in head


def read_tf_networks(file: IO[bytes]) -> tuple[TFNetwork, TFNetwork, TFNetwork]:
    """Unpickles a TF network pickle safely into data holders.

    Args:
        file: Binary file object positioned at the pickle.

    Returns:
        (G, D, Gs) as `TFNetwork` data holders.

    Raises:
        UnsafePickleError: If the pickle references anything but arrays and the TF Network class.
        LoadError: If it is not a (G, D, Gs) tuple, or was written by StyleGAN1 (version < 4).
        pickle.UnpicklingError, EOFError: On a corrupt or truncated stream.
    """
    data = _TFUnpickler(file).load()
    if not (isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data)):
        kind = f'a {type(data).__name__}' + (f' of {len(data)}' if isinstance(data, (tuple, list)) else '')
        raise LoadError(f'a TensorFlow network pickle holds a (G, D, Gs) tuple of networks, this one holds {kind}')
    for net in data:
        _check_network(net, net.name or '?', 0)
    return data


def _check_network(net: TFNetwork, where: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise LoadError(f'TensorFlow network {where} nests components deeper than {_MAX_DEPTH} levels')
    if not isinstance(net.version, int) or net.version < SUPPORTED_VERSION:
        raise LoadError(
            f'TensorFlow network {where} has format version {net.version!r}: this is a StyleGAN1 pickle (version 3), '
            'which is not supported; only StyleGAN2 and StyleGAN2-ADA TensorFlow pickles (version 4) can be loaded'
        )
    if net.version > SUPPORTED_VERSION:
        raise LoadError(f'TensorFlow network {where} has unknown format version {net.version}; expected 4')
    for key, comp in net.components.items():
        if not isinstance(comp, TFNetwork):
            raise LoadError(f'TensorFlow network {where} component {key!r} is a {type(comp).__name__}, not a network')
        _check_network(comp, f'{where}/{key}', depth + 1)
    for item in net.variables:
        ok = isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
        if not ok or not isinstance(item[1], (np.ndarray, np.generic)):
            raise LoadError(f'TensorFlow network {where} has a malformed variable entry ({type(item).__name__})')


def flatten_variables(net: TFNetwork) -> dict[str, np.ndarray]:
    """All variables of a network and its components, named `<component>/<variable>` (e.g. `mapping/Dense0/weight`).

    `_lod` names of older pickles are normalised: `ToRGB_lod{k}` / `FromRGB_lod{k}` become `{R}x{R}/ToRGB` /
    `{R}x{R}/FromRGB` with R = resolution / 2**k.

    Returns:
        {name: float32 array}.
    """
    out: dict[str, np.ndarray] = {}

    def walk(n: TFNetwork, prefix: str) -> None:
        for name, value in n.variables:
            out[prefix + name] = np.asarray(value)
        for key, comp in n.components.items():
            walk(comp, f'{prefix}{key}/')

    walk(net, '')
    resolution = int(_kwargs_of(net).get('resolution', 1024))
    renamed: dict[str, np.ndarray] = {}
    for name, value in out.items():
        m = re.fullmatch(r'((?:.*/)?)(ToRGB|FromRGB)_lod(\d+)/(.*)', name)
        if m:
            res = resolution >> int(m.group(3))
            name = f'{m.group(1)}{res}x{res}/{m.group(2)}/{m.group(4)}'
        renamed[name] = value
    return renamed


def _kwargs_of(net: TFNetwork) -> dict:
    """The network's static kwargs merged with its components' (components get the top-level arguments too)."""
    kwargs: dict = {}
    for comp in net.components.values():
        kwargs.update(comp.static_kwargs)
    kwargs.update(net.static_kwargs)
    return kwargs


def _check_kwargs(net: TFNetwork, kwargs: dict) -> None:
    unknown = sorted(str(k) for k in kwargs if k not in _SHAPE_KEYS and k not in _IGNORED_KEYS)
    if unknown:
        raise LoadError(
            f'TensorFlow network {net.name or "?"} has the unknown constructor argument '
            f'{", ".join(repr(k) for k in unknown)} in static_kwargs; its effect on the network is unknown, so it '
            "cannot be converted safely (please report the file's origin)"
        )
    if float(kwargs.get('fmap_decay', 1.0)) != 1.0:
        raise LoadError(f'static_kwargs fmap_decay must be 1.0 to convert, got {kwargs["fmap_decay"]!r}')
    if not kwargs.get('normalize_latents', True):
        raise LoadError('static_kwargs normalize_latents=False is not supported (our mapping always normalises z)')
    for key in ('architecture',):
        if key in kwargs and kwargs[key] not in ('orig', 'skip', 'resnet'):
            raise LoadError(f"static_kwargs {key} must be 'orig', 'skip' or 'resnet', got {kwargs[key]!r}")


# ----------------------------------------------------------------------------
# Variable rules.


def _dense(w: np.ndarray) -> np.ndarray:
    return w.T  # [in, out] -> [out, in]


def _conv(w: np.ndarray) -> np.ndarray:
    return w.transpose(3, 2, 0, 1)  # [kh, kw, I, O] -> [O, I, kh, kw]


def _conv_flip(w: np.ndarray) -> np.ndarray:
    return _conv(w)[:, :, ::-1, ::-1]


def _same(w: np.ndarray) -> np.ndarray:
    return w


_Rule = tuple[str, Callable[[np.ndarray], np.ndarray]]


def _fc_rules(ours: str, tf: str) -> dict[str, _Rule]:
    return {f'{ours}.weight': (f'{tf}/weight', _dense), f'{ours}.bias': (f'{tf}/bias', _same)}


def _conv_rules(ours: str, tf: str, flip: bool = False) -> dict[str, _Rule]:
    return {f'{ours}.weight': (f'{tf}/weight', _conv_flip if flip else _conv), f'{ours}.bias': (f'{tf}/bias', _same)}


def _modconv_rules(ours: str, tf: str, flip: bool = False, noise: str | None = None) -> dict[str, _Rule]:
    rules = _conv_rules(ours, tf, flip)
    rules[f'{ours}.affine.weight'] = (f'{tf}/mod_weight', _dense)
    rules[f'{ours}.affine.bias'] = (f'{tf}/mod_bias', lambda b: b + 1)
    if noise is not None:
        rules[f'{ours}.noise_strength'] = (f'{tf}/noise_strength', _same)
        rules[f'{ours}.noise_const'] = (noise, lambda n: n.reshape(n.shape[-2:]))
    return rules


def _generator_rules(G: Any) -> dict[str, _Rule]:
    """Our generator parameter/buffer name -> (TF variable name, transform)."""
    rules: dict[str, _Rule] = {'mapping.w_avg': ('dlatent_avg', _same)}
    if G.c_dim > 0:
        rules.update(_fc_rules('mapping.embed', 'mapping/LabelEmbed'))
    for i in range(G.mapping.num_layers):
        rules.update(_fc_rules(f'mapping.fc{i}', f'mapping/Dense{i}'))
    for res in G.synthesis.block_resolutions:
        block = getattr(G.synthesis, f'b{res}')
        tf, ours, log2 = f'synthesis/{res}x{res}', f'synthesis.b{res}', int(np.log2(res))
        if res == 4:
            rules[f'{ours}.const'] = (f'{tf}/Const/const', lambda c: c.reshape(c.shape[-3:]))
            noise = 'synthesis/noise0' if block.conv1.use_noise else None
            rules.update(_modconv_rules(f'{ours}.conv1', f'{tf}/Conv', noise=noise))
        else:
            noise0 = f'synthesis/noise{2 * log2 - 5}' if block.conv0.use_noise else None
            noise1 = f'synthesis/noise{2 * log2 - 4}' if block.conv1.use_noise else None
            rules.update(_modconv_rules(f'{ours}.conv0', f'{tf}/Conv0_up', flip=True, noise=noise0))
            rules.update(_modconv_rules(f'{ours}.conv1', f'{tf}/Conv1', noise=noise1))
        if hasattr(block, 'torgb'):
            rules.update(_modconv_rules(f'{ours}.torgb', f'{tf}/ToRGB'))
        if hasattr(block, 'skip'):
            rules[f'{ours}.skip.weight'] = (f'{tf}/Skip/weight', _conv_flip)
    return rules


def _discriminator_rules(D: Any) -> dict[str, _Rule]:
    """Our discriminator parameter/buffer name -> (TF variable name, transform)."""
    rules: dict[str, _Rule] = {}
    for res in D.block_resolutions:
        block = getattr(D, f'b{res}')
        tf, ours = f'{res}x{res}', f'b{res}'
        if hasattr(block, 'fromrgb'):
            rules.update(_conv_rules(f'{ours}.fromrgb', f'{tf}/FromRGB'))
        rules.update(_conv_rules(f'{ours}.conv0', f'{tf}/Conv0'))
        rules.update(_conv_rules(f'{ours}.conv1', f'{tf}/Conv1_down'))
        if hasattr(block, 'skip'):
            rules[f'{ours}.skip.weight'] = (f'{tf}/Skip/weight', _conv)
    if hasattr(D.b4, 'fromrgb'):
        rules.update(_conv_rules('b4.fromrgb', '4x4/FromRGB'))
    rules.update(_conv_rules('b4.conv', '4x4/Conv'))
    rules.update(_fc_rules('b4.fc', '4x4/Dense0'))
    rules.update(_fc_rules('b4.out', 'Output'))
    if D.c_dim > 0:
        rules.update(_fc_rules('mapping.embed', 'LabelEmbed'))
        for i in range(D.mapping.num_layers):
            rules.update(_fc_rules(f'mapping.fc{i}', f'Mapping{i}'))
    return rules


def _fill(module: torch.nn.Module, rules: dict[str, _Rule], tf_vars: dict[str, np.ndarray], what: str) -> None:
    """Copies the TF variables into `module` by `rules`; every parameter/buffer but resample filters must match."""
    tensors = dict(list(module.named_parameters()) + list(module.named_buffers()))
    uncovered = sorted(n for n in tensors if n not in rules and not n.endswith('resample_filter'))
    assert not uncovered, f'no TF rule for {uncovered}'
    used: set[str] = set()
    with torch.no_grad():
        for ours, (tf_name, transform) in rules.items():
            if tf_name not in tf_vars:
                raise LoadError(
                    f'the TensorFlow {what} lacks the variable {tf_name!r} (needed for {ours}); the file is '
                    'incomplete or its static_kwargs do not describe its variables'
                )
            value = np.array(transform(np.asarray(tf_vars[tf_name], dtype=np.float32)), dtype=np.float32, order='C')
            dst = tensors[ours]
            if tuple(value.shape) != tuple(dst.shape):
                raise LoadError(
                    f'the TensorFlow {what} variable {tf_name!r} has shape {list(tf_vars[tf_name].shape)}, which '
                    f'does not give the {list(dst.shape)} of {ours}; check static_kwargs (fmap_base, fmap_max, '
                    'resolution, latent sizes)'
                )
            dst.copy_(torch.from_numpy(value))
            used.add(tf_name)
    left = sorted(set(tf_vars) - used)
    if left:
        logger.info('TensorFlow %s variables not used by the conversion: %s', what, left[:20])


# ----------------------------------------------------------------------------
# Building our networks.


def _common(kwargs: dict, force_fp16: bool) -> dict:
    return dict(
        channel_base=2 * int(kwargs.get('fmap_base', 16 << 10)),  # TF: fmap_base / 2**(log2(res) - 1) channels
        channel_max=int(kwargs.get('fmap_max', 512)),
        num_fp16_res=4 if force_fp16 else int(kwargs.get('num_fp16_res', 0)),
        conv_clamp=256 if force_fp16 else kwargs.get('conv_clamp', None),
        architecture=str(kwargs.get('architecture', 'skip')),
    )


def _check_fmap_min(kwargs: dict, common: dict, resolutions: list[int]) -> None:
    fmap_min = int(kwargs.get('fmap_min', 1))
    smallest = min(min(common['channel_base'] // r, common['channel_max']) for r in resolutions)
    if fmap_min > smallest:
        raise LoadError(f'static_kwargs fmap_min={fmap_min} is above the smallest layer width {smallest}; unsupported')


def convert_tf_generator(tf_G: TFNetwork, *, force_fp16: bool = False) -> torch.nn.Module:
    """Builds our StyleGAN2 `Generator` from a TF generator (G or Gs) and copies its weights.

    Args:
        tf_G: The TF generator data holder (components 'mapping' and 'synthesis').
        force_fp16: Use fp16 in the 4 highest resolutions with conv_clamp 256 (effective on CUDA only).

    Returns:
        `training.networks_stylegan2.Generator` in eval mode on the CPU.

    Raises:
        LoadError: Unknown static_kwargs key (named), missing variable (named), shape mismatch, or an unsupported
            variant (StyleGAN2-TF conditional nets with `LabelConcat`).
    """
    from training.networks_stylegan2 import Generator

    kwargs = _kwargs_of(tf_G)
    _check_kwargs(tf_G, kwargs)
    tf_vars = flatten_variables(tf_G)
    if any(n.startswith('mapping/LabelConcat/') for n in tf_vars):
        raise LoadError(
            'conditional StyleGAN2-TF generators (mapping/LabelConcat: the label is concatenated to z before '
            'normalisation) are not supported; StyleGAN2-ADA TF conditional generators (LabelEmbed) are'
        )
    num_layers = int(kwargs.get('mapping_layers', 8))
    c_dim = int(kwargs.get('label_size', 0))
    mapping_kwargs: dict[str, Any] = dict(
        num_layers=num_layers,
        lr_multiplier=float(kwargs.get('mapping_lrmul', 0.01)),
        activation=str(kwargs.get('mapping_nonlinearity', 'lrelu')),
        w_avg_beta=float(kwargs.get('dlatent_avg_beta', kwargs.get('w_avg_beta', 0.995))),
    )
    if num_layers > 1 and 'mapping/Dense0/weight' in tf_vars:
        mapping_kwargs['layer_features'] = int(tf_vars['mapping/Dense0/weight'].shape[1])
    elif kwargs.get('mapping_fmaps') is not None:
        mapping_kwargs['layer_features'] = int(kwargs['mapping_fmaps'])
    if c_dim > 0 and 'mapping/LabelEmbed/weight' in tf_vars:
        mapping_kwargs['embed_features'] = int(tf_vars['mapping/LabelEmbed/weight'].shape[1])
    common = _common(kwargs, force_fp16)
    resolution = int(kwargs.get('resolution', 1024))
    _check_fmap_min(kwargs, common, [2**i for i in range(2, int(np.log2(max(resolution, 4))) + 1)])
    try:
        G = Generator(
            z_dim=int(kwargs.get('latent_size', 512)),
            c_dim=c_dim,
            w_dim=int(kwargs.get('dlatent_size', 512)),
            img_resolution=resolution,
            img_channels=int(kwargs.get('num_channels', 3)),
            mapping_kwargs=mapping_kwargs,
            resample_filter=list(kwargs.get('resample_kernel', [1, 3, 3, 1])),
            use_noise=bool(kwargs.get('use_noise', True)),
            activation=str(kwargs.get('nonlinearity', 'lrelu')),
            **common,
        )
    except (ValueError, AssertionError, KeyError, TypeError) as e:
        raise LoadError(f'cannot build a generator from the TensorFlow static_kwargs {kwargs}: {e}') from e
    _fill(G, _generator_rules(G), tf_vars, f'generator {tf_G.name or ""}'.strip())
    return G.eval().requires_grad_(False)


def convert_tf_discriminator(tf_D: TFNetwork, *, force_fp16: bool = False) -> torch.nn.Module:
    """Builds our StyleGAN2 `Discriminator` from a TF discriminator and copies its weights.

    Raises:
        LoadError: As for `convert_tf_generator()`.
    """
    from training.networks_stylegan2 import Discriminator

    kwargs = _kwargs_of(tf_D)
    _check_kwargs(tf_D, kwargs)
    tf_vars = flatten_variables(tf_D)
    c_dim = int(kwargs.get('label_size', 0))
    activation = str(kwargs.get('nonlinearity', 'lrelu'))
    mapping_kwargs: dict[str, Any] = dict(
        num_layers=int(kwargs.get('mapping_layers', 0)), lr_multiplier=float(kwargs.get('mapping_lrmul', 0.1))
    )
    cmap_dim = None
    if c_dim > 0:
        if 'Output/weight' in tf_vars:
            cmap_dim = int(tf_vars['Output/weight'].shape[1])
        if 'LabelEmbed/weight' in tf_vars:
            mapping_kwargs['embed_features'] = int(tf_vars['LabelEmbed/weight'].shape[1])
        if 'Mapping0/weight' in tf_vars and mapping_kwargs['num_layers'] > 1:
            mapping_kwargs['layer_features'] = int(tf_vars['Mapping0/weight'].shape[1])
    common = _common(kwargs, force_fp16)
    common['architecture'] = str(kwargs.get('architecture', 'resnet'))
    resolution = int(kwargs.get('resolution', 1024))
    _check_fmap_min(kwargs, common, [2**i for i in range(2, int(np.log2(max(resolution, 4))) + 1)])
    try:
        D = Discriminator(
            c_dim=c_dim,
            img_resolution=resolution,
            img_channels=int(kwargs.get('num_channels', 3)),
            cmap_dim=cmap_dim,
            block_kwargs=dict(activation=activation, resample_filter=list(kwargs.get('resample_kernel', [1, 3, 3, 1]))),
            mapping_kwargs=mapping_kwargs,
            epilogue_kwargs=dict(
                mbstd_group_size=int(kwargs.get('mbstd_group_size', 4)),
                mbstd_num_channels=int(kwargs.get('mbstd_num_features', 1)),
                activation=activation,
            ),
            **common,
        )
    except (ValueError, AssertionError, KeyError, TypeError) as e:
        raise LoadError(f'cannot build a discriminator from the TensorFlow static_kwargs {kwargs}: {e}') from e
    _fill(D, _discriminator_rules(D), tf_vars, f'discriminator {tf_D.name or ""}'.strip())
    return D.eval().requires_grad_(False)


def load_tf_network_pkl(file: IO[bytes], *, force_fp16: bool = False) -> dict:
    """Reads a legacy TF StyleGAN2/ADA pickle safely and converts it to our networks.

    Args:
        file: Binary file object positioned at the pickle.
        force_fp16: See `convert_tf_generator()`.

    Returns:
        {'G': Generator or None, 'D': Discriminator or None, 'G_ema': Generator (from Gs),
         'training_set_kwargs': None, 'augment_pipe': None}. G and D become None (with a logged warning) when only
        they cannot be converted; G_ema must convert.

    Raises:
        UnsafePickleError, LoadError: See `read_tf_networks()` and `convert_tf_generator()`.
    """
    tf_G, tf_D, tf_Gs = read_tf_networks(file)
    data: dict[str, Any] = {'G_ema': convert_tf_generator(tf_Gs, force_fp16=force_fp16)}
    for key, tf_net, convert in (('G', tf_G, convert_tf_generator), ('D', tf_D, convert_tf_discriminator)):
        try:
            data[key] = convert(tf_net, force_fp16=force_fp16)
        except LoadError as e:
            logger.warning('Could not convert the TensorFlow %s (set to None): %s', key, e)
            data[key] = None
    data['training_set_kwargs'] = None
    data['augment_pipe'] = None
    return {k: data[k] for k in ('G', 'D', 'G_ema', 'training_set_kwargs', 'augment_pipe')}
