"""Numerical parity of our StyleGAN2/3 networks with the reference fixtures in ../shared/parity (README there).

Before loading: state_dict names/shapes and the deterministic filter buffers (SG3 up/down filters, i.e. the Kaiser
filter design; SG2 resample filters) equal the file's. After `load_state_dict`: ws (<= 1e-5), img, img_transformed
(SG3), noise variants (SG2) and D logits (<= 1e-4), float32 on CPU.

SG3 synthesis on CPU is the slow part (the 64 px -R net runs 12x12 radial filters on 128 channels), so the default
tier compares the SG3 images of the first `SG3_FAST_SAMPLES` samples (synthesis treats samples independently); the
`slow` test compares the whole batch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training import networks_stylegan2 as n2
from training import networks_stylegan3 as n3

SG3_CASES = ['sg3t-64', 'sg3r-64', 'sg3t-32-cond']
SG2_CASES = ['sg2-64', 'sg2-32-cond']
ALL_CASES = SG3_CASES + SG2_CASES
SG3_FAST_SAMPLES = 2
MODULES = {'training.networks_stylegan2': n2, 'training.networks_stylegan3': n3}


def _construct(kwargs: dict) -> torch.nn.Module:
    kwargs = dict(kwargs)
    module_name, class_name = kwargs.pop('class_name').rsplit('.', 1)
    return getattr(MODULES[module_name], class_name)(**kwargs)


class _Case:
    """One fixture file: fresh nets (state recorded before loading), loaded nets, lazily computed outputs."""

    def __init__(self, path):
        with np.load(path) as data:
            self.data = {key: data[key] for key in data.files}
        init_kwargs = json.loads(str(self.data['init_kwargs']))
        with torch.random.fork_rng(devices=[]):
            self.G = _construct(init_kwargs['G']).eval().requires_grad_(False)
            self.D = _construct(init_kwargs['D']).eval().requires_grad_(False)
        self.fresh = {'G': self.G.state_dict(keep_vars=False), 'D': self.D.state_dict(keep_vars=False)}
        self.fresh = {net: {k: v.clone() for k, v in sd.items()} for net, sd in self.fresh.items()}
        for net_name, net in [('G', self.G), ('D', self.D)]:
            net.load_state_dict({k: torch.from_numpy(v) for k, v in self.entries(net_name).items()})
        self._cache: dict[tuple[str, int | None], torch.Tensor] = {}

    def entries(self, net: str) -> dict[str, np.ndarray]:
        return {key[len(net) + 1 :]: value for key, value in self.data.items() if key.startswith(net + '.')}

    def tensor(self, key: str) -> torch.Tensor:
        return torch.from_numpy(self.data[key])

    def output(self, key: str, num_samples: int | None = None) -> torch.Tensor:
        """Our value of fixture entry `key` (for the first `num_samples` samples of a synthesis output)."""
        if (key, num_samples) not in self._cache:
            self._cache[key, num_samples] = self._compute(key, num_samples)
        return self._cache[key, num_samples]

    @torch.no_grad()
    def _compute(self, key: str, num_samples: int | None) -> torch.Tensor:
        ws = self.tensor('ws')[:num_samples]
        if key == 'ws':
            psi, cutoff = float(self.data['psi']), int(self.data['cutoff'])
            return self.G.mapping(self.tensor('z'), self.tensor('c'), truncation_psi=psi, truncation_cutoff=cutoff)
        if key == 'img':
            return self.G.synthesis(ws, noise_mode='const', force_fp32=True)
        if key == 'img_transformed':
            transform = self.G.synthesis.input.transform
            saved = transform.clone()
            try:
                transform.copy_(torch.from_numpy(np.linalg.inv(self.data['transform'].astype(np.float64))))
                return self.G.synthesis(ws, noise_mode='const', force_fp32=True)
            finally:
                transform.copy_(saved)
        if key == 'img_noise_random_seed5':
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(5)  # the reference drew noise per layer in order b4.conv1, b8.conv0, b8.conv1, ...
                return self.G.synthesis(ws, noise_mode='random', force_fp32=True)
        if key == 'img_noise_none':
            return self.G.synthesis(ws, noise_mode='none', force_fp32=True)
        if key == 'd_logits':
            return self.D(self.tensor('img'), self.tensor('c'))
        raise KeyError(key)


@pytest.fixture(scope='module')
def _threads():
    """These networks are small: one intra-op thread beats contended threads on a shared CPU; restored after."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(num_threads)


@pytest.fixture(scope='module')
def case(parity_dir, _threads):
    cache: dict[str, _Case] = {}

    def get(name: str) -> _Case:
        if name not in cache:
            path = parity_dir / f'{name}.npz'
            if not path.is_file():
                pytest.skip(f'{path} is missing')
            cache[name] = _Case(path)
        return cache[name]

    return get


# ----------------------------------------------------------------------------
# Before loading.


@pytest.mark.parametrize('name', ALL_CASES)
@pytest.mark.parametrize('net', ['G', 'D'])
def test_state_dict_names_and_shapes(case, name, net):
    c = case(name)
    expected = {key: tuple(value.shape) for key, value in c.entries(net).items()}
    actual = {key: tuple(value.shape) for key, value in c.fresh[net].items()}
    assert sorted(actual) == sorted(expected), set(actual) ^ set(expected)
    assert actual == expected


@pytest.mark.parametrize('name', ALL_CASES)
def test_fresh_filters_match(case, name, close_report):
    c = case(name)
    num_checked = 0
    for net in ['G', 'D']:
        for key, expected in c.entries(net).items():
            if key.rsplit('.', 1)[-1] in ('up_filter', 'down_filter', 'resample_filter'):
                close_report(c.fresh[net][key], expected, atol=1e-7, name=f'{name}: fresh {net}.{key}')
                num_checked += 1
    assert num_checked > 0


# ----------------------------------------------------------------------------
# After loading.


@pytest.mark.parametrize('name', ALL_CASES)
def test_mapping_ws(case, name, close_report):
    c = case(name)
    close_report(c.output('ws'), c.data['ws'], atol=1e-5, name=f'{name}: ws')


@pytest.mark.parametrize('name', SG2_CASES)
def test_synthesis_img_sg2(case, name, close_report):
    c = case(name)
    close_report(c.output('img'), c.data['img'], atol=1e-4, name=f'{name}: img')


@pytest.mark.parametrize('name', SG3_CASES)
@pytest.mark.parametrize('key', ['img', 'img_transformed'])
def test_synthesis_img_sg3(case, name, key, close_report):
    c = case(name)
    n = SG3_FAST_SAMPLES
    close_report(c.output(key, n), c.data[key][:n], atol=1e-4, name=f'{name}: {key}[:{n}]')


@pytest.mark.slow
@pytest.mark.parametrize('name', SG3_CASES)
@pytest.mark.parametrize('key', ['img', 'img_transformed'])
def test_synthesis_img_sg3_full_batch(case, name, key, close_report):
    c = case(name)
    close_report(c.output(key), c.data[key], atol=1e-4, name=f'{name}: {key}')


@pytest.mark.parametrize('name', SG2_CASES)
@pytest.mark.parametrize('key', ['img_noise_random_seed5', 'img_noise_none'])
def test_synthesis_noise_variants(case, name, key, close_report):
    c = case(name)
    close_report(c.output(key), c.data[key], atol=1e-4, name=f'{name}: {key}')


@pytest.mark.parametrize('name', ALL_CASES)
def test_discriminator_logits(case, name, close_report):
    c = case(name)
    close_report(c.output('d_logits'), c.data['d_logits'], atol=1e-4, name=f'{name}: d_logits')


@pytest.mark.parametrize('name', ['sg2-32-cond', 'sg3t-32-cond'])
def test_generator_forward_composes_mapping_and_synthesis(case, name, close_report):
    """G(z, c, psi, cutoff) == synthesis(mapping(...)) on the first sample (cheap)."""
    c = case(name)
    psi, cutoff = float(c.data['psi']), int(c.data['cutoff'])
    with torch.no_grad():
        img = c.G(
            c.tensor('z')[:1], c.tensor('c')[:1], truncation_psi=psi, truncation_cutoff=cutoff,
            noise_mode='const', force_fp32=True,
        )  # fmt: skip
    close_report(img, c.data['img'][:1], atol=1e-4, name=f'{name}: G(z, c)')
