"""Issue 11 items 2 and 3 in-process: safe mode takes tensors from the file and nothing else; limits come first."""

from __future__ import annotations

import importlib.util
import inspect
import io
import pathlib
import pickle
import sys

import numpy as np
import pytest
import torch

from engine import loading, network_args, pickle_scan, safe_pickle


def _sibling(name: str):
    spec = importlib.util.spec_from_file_location(f'_security_{name}', pathlib.Path(__file__).with_name(f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hostile = _sibling('hostile')


@pytest.fixture(scope='module')
def G():
    return hostile.small_generator()


def test_derived_attributes_come_from_our_constructor_not_the_file(G, tmp_path):
    tree = hostile.meta_tree(pickle.dumps({'G_ema': G}))['G_ema']
    synth = tree[1]['state']['_modules']['synthesis'][1]['state']
    synth['layer_names'] = ['input']  # would make forward skip every layer (or call any method we have)
    synth['num_ws'] = 3
    for name, child in synth['_modules'].items():
        if name != 'input':
            child[1]['state'].update(up_factor=64, down_factor=8, up_taps=7, padding=[1000, 0, 0, 0])
    tree[1]['state'].update(num_ws=99, img_resolution=1 << 20)
    path = tmp_path / 'injected.pkl'
    path.write_bytes(pickle.dumps({'G_ema': hostile.to_persistent(tree)}))

    loaded = loading.load_network_pkl(path)['G_ema']
    assert loaded.synthesis.layer_names == G.synthesis.layer_names
    assert loaded.num_ws == G.num_ws and loaded.synthesis.num_ws == G.synthesis.num_ws
    assert loaded.img_resolution == G.img_resolution
    for name, layer in loaded.synthesis.named_children():
        if name != 'input':
            ours = getattr(G.synthesis, name)
            assert (layer.up_factor, layer.down_factor, layer.up_taps) == (
                ours.up_factor,
                ours.down_factor,
                ours.up_taps,
            )
            assert list(layer.padding) == list(ours.padding)
    z = torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(z, None, noise_mode='const'), G(z, None, noise_mode='const'))


def test_train_flag_is_restored_only_when_boolean(G):
    tree = hostile.meta_tree(pickle.dumps({'G_ema': G.eval()}))['G_ema']
    tree[1]['state']['_modules']['mapping'][1]['state']['training'] = []  # not a bool: ignored
    loaded = safe_pickle.safe_load(io.BytesIO(pickle.dumps({'G_ema': hostile.to_persistent(tree)})))['G_ema']
    assert loaded.training is False and loaded.synthesis.training is False
    assert loaded.mapping.training is True  # what our constructor set, not bool([])


@pytest.mark.parametrize(
    'change, match',
    [
        (dict(num_layers=10**7), r'num_layers must be an integer in \[0, 64\]'),
        (dict(w_dim=40000), 'w_dim'),
        (dict(mapping_kwargs=dict(num_layers=10**7)), 'mapping_kwargs.num_layers'),
        (dict(img_channels=-1), 'img_channels'),
        (dict(conv_kernel=True), 'conv_kernel'),
        (dict(first_cutoff=float('inf')), 'first_cutoff must be a finite number'),
    ],
)
def test_constructor_arguments_are_checked_before_anything_is_built(change, match, monkeypatch):
    from training import networks_stylegan3

    built = []
    monkeypatch.setattr(networks_stylegan3.SynthesisNetwork, '__init__', lambda *a, **k: built.append(1))
    record = hostile.generator_record(**dict(hostile.SG3_KWARGS, **change))
    with pytest.raises(safe_pickle.ResourceLimitError, match=match):
        safe_pickle.safe_load(io.BytesIO(pickle.dumps({'G_ema': record})))
    assert not built


def test_allocation_budget_follows_the_file_size():
    """Arguments inside every range but asking for far more tensors than the file holds are refused while building."""
    big = dict(w_dim=4096, z_dim=4096, channel_max=4096, channel_base=2**21)
    record = hostile.generator_record(**dict(hostile.SG3_KWARGS, **big))
    with pytest.raises(safe_pickle.ResourceLimitError, match=r'MiB of tensors \(limit: 3x the file size'):
        safe_pickle.safe_load(io.BytesIO(pickle.dumps({'G_ema': record})))


def test_every_constructor_argument_of_a_top_level_class_has_a_range():
    from training import augment, networks_stylegan2, networks_stylegan3

    modules = {'stylegan3': networks_stylegan3, 'stylegan2': networks_stylegan2, 'augment': augment}
    for kind, names in network_args.TOP_LEVEL_CLASSES.items():
        for name in names:
            cls = getattr(modules[kind], name)
            orig = cls.__mro__[1] if '_orig_class_name' in cls.__dict__ else cls
            for p in inspect.signature(orig).parameters.values():
                if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    continue
                assert p.name in network_args._ARGS or p.name in network_args._NESTED, f'{kind}.{name}({p.name})'


@pytest.mark.parametrize(
    'obj, match',
    [
        (lambda: np.array([1, None], dtype=object), 'object array'),
        (lambda: {'a': np.zeros(3, dtype=[('x', 'f4'), ('y', 'O')])}, 'numpy'),
    ],
)
def test_object_arrays_are_refused(obj, match):
    with pytest.raises(safe_pickle.LoadError, match=match):
        safe_pickle.safe_load(io.BytesIO(pickle.dumps(obj())))


def test_numeric_arrays_and_scalars_still_load():
    data = dict(a=np.arange(6, dtype=np.float32).reshape(2, 3), b=np.int64(7), c=[np.zeros(0, np.uint8)])
    got = safe_pickle.safe_load(io.BytesIO(pickle.dumps(data)))
    assert type(got['a']) is np.ndarray and np.array_equal(got['a'], data['a']) and got['b'] == 7
    assert type(got['c'][0]) is np.ndarray


def test_scan_limits_and_report():
    a: list = []
    for _ in range(30):
        a = [a, a]
    raw = pickle.dumps(a)
    assert len(raw) < 1000
    with pytest.raises(safe_pickle.ResourceLimitError, match='max_expanded'):
        pickle_scan.scan_pickle(io.BytesIO(raw), pickle_scan.ScanLimits(max_expanded=10**6))
    report = pickle_scan.scan_pickle(io.BytesIO(raw), pickle_scan.ScanLimits(max_expanded=2**32))
    assert report.expanded == 2**31 - 1 and report.depth == 30
    with pytest.raises(safe_pickle.ResourceLimitError, match='max_depth'):
        pickle_scan.scan_pickle(io.BytesIO(raw), pickle_scan.ScanLimits(max_depth=20, max_expanded=2**32))
    with pytest.raises(EOFError, match='truncated'):
        pickle_scan.scan_pickle(io.BytesIO(raw[:-3]), pickle_scan.ScanLimits(max_expanded=2**32))
    default = loading.default_network_path()
    if default.is_file():
        with open(default, 'rb') as f:
            report = pickle_scan.scan_pickle(f)
        assert report.depth < pickle_scan.ScanLimits().max_depth // 3  # real networks are far from the limits
        assert report.expanded < pickle_scan.ScanLimits().max_expanded // 100


def test_recursion_is_reported_as_a_nesting_limit_not_a_tensor_problem(tmp_path, monkeypatch):
    """Issue 11 item 10: a RecursionError used to read 'could not read tensors'."""
    path = tmp_path / 'net.pkl'
    path.write_bytes(pickle.dumps({'G_ema': None}))

    def deep(*args, **kwargs):
        raise RecursionError('maximum recursion depth exceeded')

    monkeypatch.setattr(loading, 'safe_load', deep)
    with pytest.raises(loading.LoadError, match='nests objects too deeply') as info:
        loading.load_network_pkl(path)
    assert 'could not read tensors' not in str(info.value)
