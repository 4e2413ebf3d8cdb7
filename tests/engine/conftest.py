"""Fixtures shared by the engine tests."""

from __future__ import annotations

import pickle

import pytest


@pytest.fixture(scope='session')
def tiny_sg3_pkl(tmp_path_factory) -> str:
    """Path of a pickle ``{'G_ema': G}`` holding a tiny StyleGAN3-T generator (z_dim = w_dim = 8, 16x16 RGB, 3 layers,
    seed 0): loads and renders in well under a second on a CPU. Read it; do not change it (shared by the session)."""
    import torch

    from training import networks_stylegan3 as sg3

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = sg3.Generator(
            z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=128, channel_max=8,
            num_layers=3, mapping_kwargs=dict(num_layers=1),
        ).eval()  # fmt: skip
    path = tmp_path_factory.mktemp('tiny_sg3') / 'sg3.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(G_ema=G), f)
    return str(path)
