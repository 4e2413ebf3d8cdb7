"""engine.devices and engine.latents."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import devices, latents


def test_available_devices_ends_with_cpu():
    names = devices.available_devices()
    assert names[-1] == 'cpu' and len(set(names)) == len(names)
    assert ('cuda' in names) == torch.cuda.is_available()


def test_pick_device():
    assert devices.pick_device('cpu') == torch.device('cpu')
    assert devices.pick_device(torch.device('cpu')) == torch.device('cpu')
    assert devices.pick_device('auto').type == devices.available_devices()[0]
    assert devices.pick_device(None).type == devices.available_devices()[0]
    with pytest.raises(ValueError, match='must be one of'):
        devices.pick_device('tpu')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='not available'):
            devices.pick_device('cuda')


def test_supports_fp16():
    assert devices.supports_fp16('cuda') and not devices.supports_fp16('cpu') and not devices.supports_fp16('mps')


def test_z_and_class_from_seed_match_reference_recipe():
    rnd = np.random.RandomState(42)
    z = rnd.randn(1, 16)
    cls = rnd.randint(10)
    got = latents.z_from_seed(42, 16)
    assert got.dtype == np.float32 and got.shape == (1, 16)
    assert np.array_equal(got, z.astype(np.float32))
    assert latents.class_from_seed(42, 10, z_dim=16) == cls
    with pytest.raises(ValueError, match='seed'):
        latents.z_from_seed(-1, 4)


def test_parse_range_and_vec2():
    assert latents.parse_range('0,3,5-9') == [0, 3, 5, 6, 7, 8, 9]
    assert latents.parse_range('4') == [4]
    for bad in ('a', '5-3', '1,,2'):
        with pytest.raises(ValueError, match='0,3,5-9'):
            latents.parse_range(bad)
    assert latents.parse_vec2('0.1,-0.2') == (0.1, -0.2)
    with pytest.raises(ValueError, match='two numbers'):
        latents.parse_vec2('1,2,3')


def test_make_transform():
    m = latents.make_transform((0.25, -0.5), 90)
    expected = np.array([[0, 1, 0.25], [-1, 0, -0.5], [0, 0, 1]])
    assert np.allclose(m, expected, atol=1e-12)
    assert np.allclose(latents.make_transform(), np.eye(3))
