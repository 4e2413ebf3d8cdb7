"""engine.net_cache: non-blocking lookups, background loads, per-device copies, LRU eviction, remembered failures."""

from __future__ import annotations

import os
import threading
import time

import pytest

from engine.net_cache import NetCache, NetLoadError, net_info

TIMEOUT_SEC = 120.0


def _wait(cache: NetCache, source, device='cpu'):
    deadline = time.monotonic() + TIMEOUT_SEC
    while time.monotonic() < deadline:
        status = cache.lookup(source, False, device)
        if not status.is_loading:
            return status
        time.sleep(0.01)
    raise AssertionError('the load never finished')


def test_lookup_is_non_blocking_and_reports_load_time_once(tiny_sg3_pkl):
    release = threading.Event()
    calls: list = []

    def loader(source, trust):
        calls.append(source)
        assert release.wait(TIMEOUT_SEC)
        from engine.loading import load_generator_and_path

        G, path = load_generator_and_path(source, trust=trust)
        return G, str(path)

    cache = NetCache(loader=loader)
    first = cache.lookup(tiny_sg3_pkl, False, 'cpu')
    assert first.is_loading and cache.is_loading(tiny_sg3_pkl, False)
    assert cache.lookup(tiny_sg3_pkl, False, 'cpu').is_loading  # still loading; no second thread
    release.set()
    ready = _wait(cache, tiny_sg3_pkl)
    assert ready.net is not None and ready.load_ms > 0 and ready.net.info.config == 'stylegan3-t'
    again = cache.lookup(tiny_sg3_pkl, False, 'cpu')
    assert again.net is ready.net and again.load_ms == 0 and calls == [tiny_sg3_pkl]
    net, load_ms = cache.get(tiny_sg3_pkl, False, 'cpu')
    assert net is ready.net and load_ms == 0


def test_failures_remembered_until_the_file_changes(tmp_path, tiny_sg3_pkl):
    bad = tmp_path / 'bad.pkl'
    bad.write_bytes(b'not a pickle\n' * 4)
    calls: list = []

    def loader(source, trust):
        calls.append(source)
        from engine.loading import load_generator_and_path

        G, path = load_generator_and_path(source, trust=trust)
        return G, str(path)

    cache = NetCache(loader=loader)
    with pytest.raises(NetLoadError) as e:
        cache.get(str(bad), False, 'cpu')
    assert 'not a network pickle' in str(e.value) and e.value.failure.source == str(bad)
    for _ in range(3):
        assert cache.lookup(str(bad), False, 'cpu').failure is not None
    assert calls == [str(bad)]  # remembered: not loaded again
    bad.write_bytes(open(tiny_sg3_pkl, 'rb').read())  # the user fixed the file
    os.utime(bad, ns=(time.time_ns(), time.time_ns() + 10**9))
    status = _wait(cache, str(bad))
    assert status.net is not None and calls == [str(bad), str(bad)]


def test_unexpected_loader_error_becomes_failure_with_traceback():
    def loader(source, trust):
        raise ZeroDivisionError('inside the pickle code')

    cache = NetCache(loader=loader)
    with pytest.raises(NetLoadError) as e:
        cache.get('https://example.org/x.pkl', False, 'cpu')
    f = e.value.failure
    assert 'ZeroDivisionError: inside the pickle code' in f.message and 'Traceback' in f.detail
    assert cache.lookup('https://example.org/x.pkl', False, 'cpu').is_loading  # URL failures are retried


def test_eviction_and_on_evict(tiny_sg3_pkl, tmp_path):
    evicted: list = []
    paths = []
    for i in range(3):
        p = tmp_path / f'n{i}.pkl'
        p.write_bytes(open(tiny_sg3_pkl, 'rb').read())
        paths.append(str(p))
    cache = NetCache(max_pkls=2, max_nets=2, on_evict=evicted.append)
    for p in paths:
        cache.get(p, False, 'cpu')
    assert evicted == [(paths[0], False, 'cpu')]
    with pytest.raises(ValueError, match='max_nets'):
        NetCache(max_nets=0)


def test_net_info_config_of_sg2_and_sg3_r():
    from training import networks_stylegan2 as sg2
    from training import networks_stylegan3 as sg3

    small = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=1))
    G_r = sg3.Generator(channel_base=128, channel_max=8, num_layers=3, conv_kernel=1, use_radial_filters=True, **small)
    G_2 = sg2.Generator(channel_base=128, channel_max=8, **small)
    assert net_info(G_r, None, 'x').config == 'stylegan3-r'
    assert net_info(G_2, 'a.pkl', 'x').config == 'stylegan2' and net_info(G_2, 'a.pkl', 'x').pkl == 'a.pkl'
