"""FID / KID end to end with a tiny TorchScript detector pickled like the reference `inception-2015-12-05.pkl`."""

from __future__ import annotations

import pickle

import numpy as np
import PIL.Image
import pytest
import torch

from metrics import metric_main, metric_utils


@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.RandomState(0)
    folder = tmp_path / 'images'
    folder.mkdir()
    for i in range(10):
        PIL.Image.fromarray(rng.randint(0, 256, size=(16, 16, 3), dtype=np.uint8)).save(folder / f'{i:02d}.png')
    return folder


@pytest.mark.filterwarnings('ignore::DeprecationWarning', 'ignore::UserWarning')
def test_detector_pickle_is_plain_pickle_of_torchscript(tiny_detector_pkl):
    with open(tiny_detector_pkl, 'rb') as f:
        detector = pickle.load(f)  # What users' own scripts (and the reference tools) do.
    assert isinstance(detector, torch.jit.ScriptModule)
    feats = detector(torch.zeros([2, 3, 16, 16], dtype=torch.uint8), return_features=True)
    assert feats.shape == (2, 16)


def test_fid_and_kid_run_and_cache_dataset_statistics(stub_generator, image_folder, tiny_detector_pkl, tmp_path):
    kwargs = dict(
        dataset_kwargs=dict(path=str(image_folder)), num=12, detector=str(tiny_detector_pkl),
        cache_dir=tmp_path / 'cache', batch_size=5,
    )  # fmt: skip
    G = stub_generator(img_resolution=16)
    first = metric_main.calc_metric('fid50k_full', G, **kwargs)
    fid = first.results['fid50k_full']
    assert np.isfinite(fid) and fid > 0
    cached = list((tmp_path / 'cache' / 'gan-metrics').glob('images-meancov-*.npz'))
    assert len(cached) == 1
    again = metric_main.calc_metric('fid50k_full', G, **kwargs)
    assert again.results['fid50k_full'] == pytest.approx(fid, rel=1e-9)  # Same seeds, cached real statistics.
    kid = metric_main.calc_metric('kid50k_full', G, **kwargs).results['kid50k_full']
    assert np.isfinite(kid)
    assert len(list((tmp_path / 'cache' / 'gan-metrics').glob('images-all-*.npz'))) == 1

    # The real-image statistics match a direct computation with the detector.
    detector, _ = metric_utils.load_detector(str(tiny_detector_pkl), cache_dir=tmp_path / 'cache')
    imgs = np.stack([np.asarray(PIL.Image.open(p)).transpose(2, 0, 1) for p in sorted(image_folder.glob('*.png'))])
    with torch.no_grad():
        feats = detector(torch.from_numpy(imgs), return_features=True).double().numpy()
    with np.load(cached[0]) as data:
        np.testing.assert_allclose(data['mu'], feats.mean(0), atol=1e-5)
        np.testing.assert_allclose(data['sigma'], np.cov(feats, rowvar=False, bias=True), atol=1e-5)


def test_missing_detector_explains_where_to_get_it(stub_generator, image_folder, tmp_path, monkeypatch):
    monkeypatch.delenv(metric_utils.DETECTOR_ENV, raising=False)
    with pytest.raises(metric_main.MetricError, match=r'inception-2015-12-05\.pkl.*--detector'):
        metric_main.calc_metric(
            'fid50k_full', stub_generator(16), dataset_kwargs=dict(path=str(image_folder)), num=2,
            cache_dir=tmp_path / 'empty-cache',
        )  # fmt: skip
    with pytest.raises(metric_main.MetricError, match='not found'):
        metric_utils.load_detector(str(tmp_path / 'nope.pkl'), cache_dir=tmp_path)


def test_missing_dataset_is_a_clear_error(stub_generator, tiny_detector_pkl):
    with pytest.raises(metric_main.MetricError, match='--data'):
        metric_main.calc_metric('kid50k_full', stub_generator(16), num=2, detector=str(tiny_detector_pkl))


def test_detector_pickle_with_foreign_globals_needs_trust(tmp_path):
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps(print))  # References builtins.print.
    with pytest.raises(metric_main.MetricError, match='--trust'):
        metric_utils.load_detector(str(path), cache_dir=tmp_path)
