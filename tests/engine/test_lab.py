"""engine.lab + engine.jobs through the renderer: live profiles, average-N-seeds = avg_spectra calc, jobs in the
render process (thread and spawned process), export spectrum, the EQ readout = the metric's per-sample value."""

from __future__ import annotations

import math
import pathlib
import pickle
import sys
import time

import numpy as np
import pytest
import torch

from engine import lab
from engine import spectrum_io as spio
from engine.async_renderer import AsyncRenderer
from engine.protocol import RenderRequest
from engine.renderer import Renderer

REPO = pathlib.Path(__file__).resolve().parents[2]
RES = 16


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


@pytest.fixture(scope='module')
def sg3_pkl(tmp_path_factory) -> str:
    from training import networks_stylegan3 as sg3

    small = dict(
        z_dim=16, w_dim=16, img_resolution=RES, channel_base=256, channel_max=16, mapping_kwargs=dict(num_layers=2)
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = sg3.Generator(c_dim=0, img_channels=3, num_layers=4, **small).eval()
        with torch.no_grad():
            G.mapping.w_avg.normal_()
    path = tmp_path_factory.mktemp('lab') / 'sg3.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=None), f)
    return str(path)


def _drain(gen):
    progress = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            return stop.value, progress


def test_live_profiles_are_the_view_spectrum(sg3_pkl):
    r = Renderer('cpu')
    req = RenderRequest(pkl=sg3_pkl, w0_seeds=((3, 1.0),), lab_spectrum=True, lab_interp=2)
    res = r.render(req)
    assert res.error is None and 'eq_kind' not in res.lab
    live = res.lab
    assert live['layer'] == 'output' and live['interp'] == 2 and live['num'] == 1
    x, layer = r.view_tensor(req)
    spec = lab.view_spectrum(x, is_image=True, beta=8.0, interp=2)
    prof = spio.spectrum_profiles(spec['spectrum'])
    for k in prof:
        np.testing.assert_allclose(live[k], prof[k], rtol=1e-5, atol=1e-4)
    # Normalised by a reference's mean/std: +20 log10(2) dB when std halves.
    a = np.asarray(r.render(req.replace(lab_norm=(128.0, 40.0))).lab['radial'])
    b = np.asarray(r.render(req.replace(lab_norm=(128.0, 20.0))).lab['radial'])
    np.testing.assert_allclose(b[1:] - a[1:], 20 * math.log10(2), atol=1e-3)
    bad = r.render(req.replace(lab_norm=(1.0, 0.0)))
    assert bad.error and 'lab_norm' in bad.error
    assert 'lab_interp' in r.render(req.replace(lab_interp=0)).error
    assert r.render(req.replace(lab_spectrum=False)).lab is None


@pytest.mark.parametrize('kx,ky,curve', [(9, 0, 'slice_0'), (6, 6, 'slice_45'), (5, 7, None)])
def test_sinusoid_layer_peaks_at_its_frequency_in_the_radial_plot(kx, ky, curve):
    n = 48
    y, x = np.mgrid[0:n, 0:n]
    layer = torch.from_numpy(np.stack([np.cos(2 * np.pi * (kx * x + ky * y) / n)] * 4)).float()  # [C, H, W]
    req = RenderRequest(lab_spectrum=True, lab_interp=4)
    out = lab.LabView().compute(
        req, net_key=None, has_input_transform=True, layer='L3', x_raw=layer, x_view=layer, extent=1.0,
        render_identity=None,
    )  # fmt: skip
    prof = out
    f = math.hypot(kx, ky) / n
    from viz.spectrum_lab_widget import peak_frequency

    # The ring mean divides each ring by its length (~r), pulling a peak of finite width (the window's main lobe) a
    # little inward: within one bin of the unpadded spectrum, its true resolution.
    assert abs(peak_frequency(prof, 'radial') - f) <= 1 / n, (peak_frequency(prof, 'radial'), f)
    if curve is not None:  # on the slice's axis: the slice peaks there too
        assert abs(peak_frequency(prof, curve) - f) <= 0.5 / (n * 4) + 1e-9


@pytest.mark.parametrize('norm', [None, (120.0, 60.0)])
def test_average_job_equals_avg_spectra_calc(sg3_pkl, norm):
    sys.path.insert(0, str(REPO))
    import avg_spectra

    r = Renderer('cpu')
    req = RenderRequest(pkl=sg3_pkl, w0_seeds=((5, 1.0),), trunc_psi=0.8)
    mean, std = norm if norm is not None else (None, None)
    result, progress = _drain(lab.average_spectrum_job(r, request=req, num=7, batch=3, mean=mean, std=std, interp=2))
    assert progress[-1].done == progress[-1].total == (3 if norm else 6)
    # Same batches (3) and thread count as the job: bit-identical images (other batchings may flip a few 8-bit
    # pixels through float rounding, as calc with two --batch values does to itself).
    src = avg_spectra.ImageSource(sg3_pkl, num=7, seed=5, device=torch.device('cpu'), trunc=0.8)
    next(src.batches(1, progress=False))  # warm-up: the first call may take another op path (impl='auto')
    if norm is None:
        mean, std = avg_spectra.compute_stats(src, batch=3, progress=False)
    cli = avg_spectra.compute_spectrum(src, mean=mean, std=std, interp=2, batch=3, progress=False)
    assert result['mean'] == pytest.approx(cli['mean'], rel=1e-12) and result['std'] == pytest.approx(
        cli['std'], rel=1e-12
    )
    diff_db = np.abs(spio.to_db(result['spectrum']) - spio.to_db(cli['spectrum']))
    assert diff_db.max() < 1e-3, diff_db.max()
    assert result['num'] == 7 and result['first_seed'] == 5 and result['layer'] == 'output'


def test_average_job_on_a_layer_and_errors(sg3_pkl):
    r = Renderer('cpu')
    layers = [info.name for info in r.render(RenderRequest(pkl=sg3_pkl)).layers]
    req = RenderRequest(pkl=sg3_pkl, layer_name=layers[2])
    result, _ = _drain(lab.average_spectrum_job(r, request=req, num=3, interp=1))
    assert result['layer'] == layers[2] and result['spectrum'].shape[0] == result['image_size']
    from engine.jobs import JobError

    for kw, match in [
        (dict(num=0), 'num'),
        (dict(num=True), 'num'),
        (dict(mean=1.0), 'both mean and std'),
        (dict(std=-1.0, mean=0.0), 'both mean and std'),
        (dict(beta=float('nan')), 'beta'),
        (dict(first_seed=2**32 - 2, num=5), 'exceed'),
    ]:
        with pytest.raises(JobError, match=match):
            _drain(lab.average_spectrum_job(r, request=req, **kw))
    with pytest.raises(JobError, match='no layer'):
        _drain(lab.average_spectrum_job(r, request=req.replace(layer_name='nope'), num=1))
    with pytest.raises(JobError):
        _drain(lab.average_spectrum_job(r, request=req.replace(pkl=str(REPO / 'missing.pkl')), num=1))


def test_view_spectrum_job_is_the_displayed_view(sg3_pkl):
    r = Renderer('cpu')
    req = RenderRequest(pkl=sg3_pkl, w0_seeds=((1, 0.5), (2, 0.5)), input_transform=((1, 0, 0.1), (0, 1, 0), (0, 0, 1)))
    result, _ = _drain(lab.view_spectrum_job(r, request=req, interp=2))
    live = r.render(req.replace(lab_spectrum=True, lab_interp=2)).lab
    prof = spio.spectrum_profiles(result['spectrum'])
    np.testing.assert_allclose(live['radial'], prof['radial'], atol=1e-4)


def _wait_jobs(r: AsyncRenderer, job_ids, timeout=120.0) -> dict:
    final: dict = {}
    updates: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(final) < len(job_ids):
        r.get_result()
        for u in r.job_updates():
            updates.append(u)
            if u.is_final:
                final[u.job_id] = u
        time.sleep(0.01)
    assert len(final) == len(job_ids), updates
    return final


@pytest.mark.parametrize('separate', [False, True])
def test_async_jobs_run_between_renders_and_cancel(sg3_pkl, separate):
    with AsyncRenderer(device='cpu', separate_process=separate, num_threads=1) as r:
        r.set_request(RenderRequest(pkl=sg3_pkl, w0_seeds=((1, 1.0),)))
        slow = r.start_job('sleep', {'num': 10_000, 'step_sec': 0.01})
        avg = r.start_job('average_spectrum', {'num': 4, 'interp': 1})
        bad = r.start_job('nope')
        time.sleep(0.3)
        r.set_request(RenderRequest(pkl=sg3_pkl, w0_seeds=((2, 1.0),)))  # renders while a job runs
        deadline = time.monotonic() + 120
        while r.is_busy and time.monotonic() < deadline:
            r.get_result()
            time.sleep(0.01)
        assert not r.is_busy
        r.cancel_job(slow)
        final = _wait_jobs(r, [slow, avg, bad])
        assert final[slow].state == 'cancelled' and final[bad].state == 'error'
        assert final[avg].state == 'done' and final[avg].result['num'] == 4, final[avg]
        with pytest.raises(TypeError):
            r.start_job('sleep', params=[1, 2])


def test_async_jobs_fail_when_the_render_process_dies(sg3_pkl):
    import os
    import signal

    with AsyncRenderer(device='cpu', separate_process=True, num_threads=1) as r:
        r.set_request(RenderRequest(pkl=sg3_pkl))
        job = r.start_job('sleep', {'num': 10_000, 'step_sec': 0.01})
        deadline = time.monotonic() + 120
        while r.pid is None or r.is_busy:
            assert time.monotonic() < deadline
            r.get_result()
            time.sleep(0.01)
        os.kill(r.pid, signal.SIGKILL)
        final = _wait_jobs(r, [job])
        assert final[job].state == 'error' and 'died' in final[job].error


# ---- equivariance ------------------------------------------------------------------------------------------------
def _metric_sample_psnr(G, seed: int, matrix: np.ndarray, kind: str) -> float:
    """metrics.equivariance's per-sample computation for one seed (noise 'const', psi 1)."""
    from engine.latents import z_from_seed
    from metrics import equivariance as eq

    z = torch.from_numpy(z_from_seed(seed, G.z_dim))
    saved = G.synthesis.input.transform.clone()
    try:
        with torch.no_grad():
            ws = G.mapping(z, torch.zeros([1, G.c_dim]), truncation_psi=1)
            orig = eq._render(G, ws, np.eye(3))
            se, count = eq.sample_squared_error(orig, eq._render(G, ws, matrix), matrix, kind)
    finally:
        G.synthesis.input.transform.copy_(saved)
    return eq.psnr_db(se / count)


@pytest.mark.parametrize(
    'translate,angle_deg,kind',
    [((2 / RES, -1 / RES), 0.0, 'int'), ((0.037, 0.021), 0.0, 'frac'), ((0.0, 0.0), 20.0, 'affine'),
     ((0.05, -0.02), -35.0, 'affine')],
)  # fmt: skip
def test_eq_readout_equals_the_metric_per_sample_value(sg3_pkl, translate, angle_deg, kind):
    from engine.latents import make_transform

    r = Renderer('cpu')
    user = make_transform(translate, angle_deg)
    req = RenderRequest(pkl=sg3_pkl, w0_seeds=((11, 1.0),), lab_eq=True, input_transform=tuple(map(tuple, user)))
    res = r.render(req)
    assert res.error is None and 'radial' not in res.lab
    eq_out = res.lab
    assert eq_out['eq_kind'] == kind and eq_out['layer'] == 'output' and 0 < eq_out['eq_valid_frac'] <= 1
    G, _, _ = r.prepare(req)
    want = _metric_sample_psnr(G, 11, np.linalg.inv(user), kind)
    assert math.isfinite(want) and eq_out['eq_psnr_db'] == pytest.approx(want, abs=1e-4)
    # Untransform only changes the view, not the readout; identity transforms have no readout.
    assert r.render(req.replace(untransform=True)).lab['eq_psnr_db'] == pytest.approx(eq_out['eq_psnr_db'])
    assert 'eq_kind' not in r.render(req.replace(input_transform=None)).lab


def test_eq_readout_on_a_layer_and_sg2(sg3_pkl, tmp_path):
    r = Renderer('cpu')
    layers = [info.name for info in r.render(RenderRequest(pkl=sg3_pkl)).layers]
    req = RenderRequest(
        pkl=sg3_pkl, layer_name=layers[-2], lab_eq=True, input_transform=((1, 0, 0.05), (0, 1, 0), (0, 0, 1))
    )
    out = r.render(req).lab
    assert out['layer'] == layers[-2] and math.isfinite(out['eq_psnr_db'])
    from training import networks_stylegan2 as sg2

    G2 = sg2.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, channel_base=64, channel_max=8)
    path = tmp_path / 'sg2.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(G_ema=G2.eval()), f)
    res = r.render(RenderRequest(pkl=str(path), lab_eq=True, lab_spectrum=True, input_transform=req.input_transform))
    assert res.error is None and 'eq_kind' not in res.lab and 'radial' in res.lab
    from engine.jobs import JobError

    with pytest.raises(JobError, match='input transform'):
        _drain(lab.measure_equivariance_job(r, request=RenderRequest(pkl=str(path)), num=2))


def test_measure_job_equals_calc_metrics(sg3_pkl):
    from metrics import metric_main

    r = Renderer('cpu')
    req = RenderRequest(pkl=sg3_pkl)
    result, progress = _drain(lab.measure_equivariance_job(r, request=req, num=6))
    assert [p.done for p in progress] == [1, 2] and progress[-1].message == '6/6 samples'
    G, _, _ = r.prepare(req)
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))  # restored
    for name in ('eqt50k_int', 'eqt50k_frac', 'eqr50k'):
        want = metric_main.calc_metric(name, G=G, num=6, device='cpu').results[name]
        assert result['results'][name] == pytest.approx(want, abs=1e-9), name
    assert result['num_samples'] == 6 and result['total_time_str']
    from engine.jobs import JobError

    with pytest.raises(JobError, match='metrics must be among'):
        _drain(lab.measure_equivariance_job(r, request=req, metrics=['fid50k_full']))
    with pytest.raises(JobError, match='num'):
        _drain(lab.measure_equivariance_job(r, request=req, num=-1))


def _band_limited(w: int, inv_user: np.ndarray) -> np.ndarray:
    """A smooth test signal (three cosines below 0.15 cycles/pixel) sampled at inv_user @ p, [1, 1, W, W]."""
    c = (np.arange(w) + 0.5) / w - 0.5
    py, px = np.meshgrid(c, c, indexing='ij')
    u = inv_user[0, 0] * px + inv_user[0, 1] * py + inv_user[0, 2]
    v = inv_user[1, 0] * px + inv_user[1, 1] * py + inv_user[1, 2]
    img = np.zeros_like(u)
    for fx, fy, ph in [(3.0, 1.0, 0.3), (-2.0, 5.0, 1.1), (6.0, -4.0, 2.0)]:  # cycles per image width (64 px)
        img += np.cos(2 * np.pi * (fx * u + fy * v) + ph)
    return img[None, None]


@pytest.mark.parametrize(
    'kw', [dict(scale=1.6), dict(scale=0.7), dict(shear=0.4), dict(mirror=True), dict(scale=1.3, shear=-0.3, mirror=True, angle_deg=15.0)]
)  # fmt: skip
def test_untransform_round_trips_scale_shear_mirror(kw):
    from engine.latents import make_transform
    from engine.renderer import _untransform

    w = 64
    user = make_transform((0.03, -0.02), kw.pop('angle_deg', 0.0), **kw)
    original = _band_limited(w, np.eye(3))
    transformed = torch.from_numpy(_band_limited(w, np.linalg.inv(user))).float()  # out'(p) = out(T^-1 p)
    back = _untransform(transformed[0], user, 1.0).numpy()
    # Compare where T p stays well inside the image (the untransform samples out' there).
    c = (np.arange(w) + 0.5) / w - 0.5
    py, px = np.meshgrid(c, c, indexing='ij')
    tu = user[0, 0] * px + user[0, 1] * py + user[0, 2]
    tv = user[1, 0] * px + user[1, 1] * py + user[1, 2]
    inner = (
        (np.abs(tu) < 0.5 - 8 / w)
        & (np.abs(tv) < 0.5 - 8 / w)
        & (np.abs(px) < 0.5 - 8 / w)
        & (np.abs(py) < 0.5 - 8 / w)
    )
    assert inner.sum() > 200
    err = np.abs(back[0] - original[0, 0])[inner]
    assert err.max() < 0.05 * np.abs(original).max(), err.max()


def test_lab_result_crosses_the_remote_wire(sg3_pkl):
    from engine import wire

    r = Renderer('cpu')
    req = RenderRequest(pkl=sg3_pkl, lab_spectrum=True, lab_eq=True, lab_norm=(100.0, 50.0),
                        input_transform=((1, 0, 0.04), (0, 1, 0), (0, 0, 1)))  # fmt: skip
    res = r.render(req)
    back_req = wire.request_from_wire(wire.request_to_wire(req))
    assert back_req == req
    msg, blob = wire.result_to_wire(res, 1, wire.FrameEncoding())
    back = wire.result_from_wire(msg, blob)
    assert back.lab['eq_kind'] == res.lab['eq_kind'] and back.lab['eq_psnr_db'] == pytest.approx(res.lab['eq_psnr_db'])
    np.testing.assert_allclose(back.lab['radial'], res.lab['radial'])
