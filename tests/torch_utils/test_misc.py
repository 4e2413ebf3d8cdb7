"""torch_utils.misc, training_stats, custom_ops and dnnlib: small, CPU-only checks."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import torch

from torch_utils import custom_ops, misc, training_stats


def test_assert_shape():
    x = torch.zeros(2, 3, 4)
    misc.assert_shape(x, [2, None, 4])
    with pytest.raises(AssertionError, match='dimensions'):
        misc.assert_shape(x, [2, 3])
    with pytest.raises(AssertionError, match='dimension 1'):
        misc.assert_shape(x, [2, 5, 4])


def test_constant_is_cached_and_typed():
    a = misc.constant([1.0, 2.0], dtype=torch.float32)
    b = misc.constant([1.0, 2.0], dtype=torch.float32)
    assert a is b
    assert misc.constant([1.0, 2.0], dtype=torch.float64) is not a
    c = misc.constant(3, shape=[2, 2])
    assert c.shape == (2, 2) and c.dtype == torch.get_default_dtype() and float(c.sum()) == 12


def test_suppress_tracer_warnings_restores_filters():
    import warnings

    before = list(warnings.filters)
    with misc.suppress_tracer_warnings():
        warnings.warn('hidden', torch.jit.TracerWarning, stacklevel=1)
    assert warnings.filters == before


def test_profiled_function_keeps_name_and_result():
    @misc.profiled_function
    def add_one(x):
        return x + 1

    assert add_one.__name__ == 'add_one' and add_one(1) == 2


def test_infinite_sampler_partitions_and_is_deterministic():
    data = list(range(10))
    s0 = list(itertools.islice(misc.InfiniteSampler(data, rank=0, num_replicas=2, seed=1), 20))
    s1 = list(itertools.islice(misc.InfiniteSampler(data, rank=1, num_replicas=2, seed=1), 20))
    again = list(itertools.islice(misc.InfiniteSampler(data, rank=0, num_replicas=2, seed=1), 20))
    assert s0 == again
    single = list(itertools.islice(misc.InfiniteSampler(data, seed=1), 40))
    assert s0 == single[0::2] and s1 == single[1::2]  # replicas split one stream
    assert set(single) == set(data)
    ordered = list(itertools.islice(misc.InfiniteSampler(data, shuffle=False), 12))
    assert ordered == list(range(10)) + [0, 1]
    with pytest.raises(ValueError, match='rank'):
        misc.InfiniteSampler(data, rank=2, num_replicas=2)


def test_copy_params_and_buffers():
    src = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    dst = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    with torch.no_grad():
        src[1].running_mean.fill_(7)
    dst[0].weight.requires_grad_(False)
    misc.copy_params_and_buffers(src, dst, require_all=True)
    assert torch.equal(src[0].weight, dst[0].weight) and not dst[0].weight.requires_grad
    assert torch.equal(dst[1].running_mean, torch.full([3], 7.0))
    with pytest.raises(KeyError):
        misc.copy_params_and_buffers(torch.nn.Linear(3, 3), dst, require_all=True)
    names = [n for n, _ in misc.named_params_and_buffers(src)]
    assert names[:2] == ['0.weight', '0.bias'] and '1.running_mean' in names
    assert len(misc.params_and_buffers(src)) == len(names)


def test_print_module_summary(capsys):
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    out = misc.print_module_summary(net, [torch.zeros(3, 4)])
    assert out.shape == (3, 2)
    text = capsys.readouterr().out
    assert 'Parameters' in text and '[3, 5]' in text and 'Total' in text and str(4 * 5 + 5 + 5 * 2 + 2) in text


def test_ddp_helpers_without_distributed():
    net = torch.nn.Linear(2, 2)
    with misc.ddp_sync(net, sync=False):
        pass
    misc.check_ddp_consistency(net)  # no-op without torch.distributed


def test_training_stats_collector():
    collector = training_stats.Collector(regex='TestMisc/.*', keep_previous=False)
    training_stats.report('TestMisc/a', [1.0, 2.0, 3.0])
    training_stats.report('TestMisc/a', torch.tensor(4.0))
    training_stats.report0('TestMisc/b', np.array([5.0]))
    training_stats.report('Other/x', 1.0)
    collector.update()
    assert collector.names() == ['TestMisc/a', 'TestMisc/b']
    assert collector.num('TestMisc/a') == 4
    assert collector.mean('TestMisc/a') == pytest.approx(2.5)
    assert collector.std('TestMisc/a') == pytest.approx(np.std([1, 2, 3, 4]))
    assert collector['TestMisc/b'] == 5.0
    d = collector.as_dict()
    assert d['TestMisc/a'].num == 4 and d['TestMisc/b'].mean == 5.0
    collector.update()  # nothing new: keep_previous=False empties the stats
    assert collector.num('TestMisc/a') == 0 and np.isnan(collector.mean('TestMisc/a'))


def test_custom_ops_errors(tmp_path):
    with pytest.raises(ValueError, match='identifier'):
        custom_ops.get_plugin('bad name', sources=[])
    with pytest.raises(ValueError, match='missing'):
        custom_ops.get_plugin('nope_plugin', sources=['nope.cpp'], source_dir=tmp_path)


def test_easydict_pickles_and_attribute_access():
    import dnnlib

    d = dnnlib.EasyDict(a=1)
    d.b = 2
    assert d == {'a': 1, 'b': 2} and d.a == 1 and dnnlib.util.EasyDict is dnnlib.EasyDict
    with pytest.raises(AttributeError):
        _ = d.missing
    e = pickle.loads(pickle.dumps(d))
    assert type(e) is dnnlib.EasyDict and e.b == 2
