"""Spectral / equivariance lab widget logic (no window): curves, reference, pins, jobs, exports, transforms, logs."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from engine import spectrum_io
from engine.jobs import JobUpdate
from engine.protocol import NetInfo, RenderRequest, RenderResult
from viz.equivariance_widget import EquivarianceWidget, make_input_transform, measure_log_lines
from viz.spectrum_lab_widget import Curves, SpectrumLabWidget, peak_frequency


def _net(**kw) -> NetInfo:
    d = dict(pkl='', resolved_path='models/default.pkl', arch='stylegan3', img_resolution=64, img_channels=3,
             z_dim=64, c_dim=0, w_dim=64, num_ws=16, has_noise=False, has_input_transform=True)  # fmt: skip
    d.update(kw)
    return NetInfo(**d)


class _Viz:
    def __init__(self, net=None, layer='output'):
        from viz.frame_view import FrameView

        result = RenderResult(layer_name=layer)
        self.view = FrameView(net=net, image_result=result, image_request=RenderRequest(w0_seeds=((7, 1.0),)))
        self.font_size = 14.0
        self.jobs: list = []
        self.cancelled: list = []
        self.crops: list = []

    def start_job(self, kind, params):
        self.jobs.append((kind, params))
        return len(self.jobs)

    def cancel_job(self, job_id):
        self.cancelled.append(job_id)

    def request_crop_screenshot(self, path, rect):
        self.crops.append((path, rect))


def _spectrum(s=32, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return dict(spectrum=rng.gamma(2.0, size=(s, s)), image_size=s // 4, beta=8.0, interp=4, num=5, mean=190.0,
                std=80.0, source='x')  # fmt: skip


def _live(spec: dict) -> dict:
    prof = spectrum_io.spectrum_profiles(spec['spectrum'])
    return dict(
        {k: v for k, v in spec.items() if k != 'spectrum'}, **{k: list(v) for k, v in prof.items()}, layer='output'
    )


def test_spectrum_lab_request_and_reference_norm(tmp_path):
    w = SpectrumLabWidget(_Viz(_net()))
    args = {}
    w.update_request(args, 0.0)
    assert args == {'lab_spectrum': False, 'lab_beta': 8.0, 'lab_interp': 4, 'lab_norm': None}
    path = tmp_path / 'ref.npz'
    spectrum_io.save_spectrum(str(path), _spectrum())
    w.set_state({'show_plot': True, 'ref_path': str(path)})  # scripts/sessions load the reference by path
    assert w.reference is not None and w.reference.label == 'ref (5 images)'
    w.update_request(args, 0.0)
    assert args['lab_spectrum'] is True and args['lab_norm'] == (190.0, 80.0)
    RenderRequest(**args)
    w.use_ref_norm = False
    w.update_request(args, 0.0)
    assert args['lab_norm'] is None


def test_spectrum_lab_bad_reference_keeps_the_old_one(tmp_path):
    w = SpectrumLabWidget(_Viz(_net()))
    good = tmp_path / 'good.npz'
    spectrum_io.save_spectrum(str(good), _spectrum())
    assert w.load_reference(str(good))
    (tmp_path / 'bad.npz').write_text('nope')
    assert not w.load_reference(str(tmp_path / 'bad.npz'))
    assert 'not an .npz' in w.message and w.reference is not None and w.ref_path == str(good)
    assert not w.load_reference(str(tmp_path / 'missing.npz'))
    assert 'does not exist' in w.message
    assert w.load_reference(None) and w.reference is None


def test_spectrum_lab_hostile_state_is_clamped():
    w = SpectrumLabWidget(None)
    w.set_state({'beta': float('nan'), 'interp': -5, 'avg_num': 10**12, 'db_min': 50.0, 'db_max': -50.0})
    assert w.beta == 8.0 and w.interp == 1 and w.avg_num == 100_000 and (w.db_min, w.db_max) == (-50.0, 30.0)
    w.set_state({'beta': 1e9, 'interp': 99, 'avg_num': -3, 'db_min': -1e9, 'db_max': 1e9})
    assert w.beta == 50.0 and w.interp == 8 and w.avg_num == 1 and (w.db_min, w.db_max) == (-200.0, 200.0)


def test_spectrum_lab_curves_pins_and_peak():
    viz = _Viz(_net())
    w = SpectrumLabWidget(viz)
    assert not w.pin() and 'Nothing to pin' in w.message
    res = types.SimpleNamespace(lab=_live(_spectrum()), image=np.zeros((2, 2, 3), np.uint8))
    w.on_result(res)
    assert w.current is not None
    labels = [c[0] for c in w.curves()]
    assert labels == ['current (output), 0 deg', 'current (output), 45 deg', 'current (output), radial avg']
    for _ in range(6):
        assert w.pin()
    assert len(w.pins) == 4 and w.pins[-1].label.startswith('pin 6') and 'seed 7' in w.pins[-1].label
    w.show_45 = w.show_0 = False
    assert len(w.curves()) == 5  # radial average of current + 4 pins
    prof = w.current.profiles
    assert peak_frequency(prof) == pytest.approx(prof['freq_r'][2 + int(np.argmax(prof['radial'][2:]))])


def test_spectrum_lab_average_job_flow_and_exports(tmp_path):
    viz = _Viz(_net())
    w = SpectrumLabWidget(viz)
    w.set_state({'avg_num': 12, 'export_dir': str(tmp_path)})
    w.start_average()
    w.start_average()  # a second click while it runs does nothing
    assert viz.jobs == [('average_spectrum', dict(num=12, beta=8.0, interp=4, mean=None, std=None))]
    w.cancel_job()
    assert viz.cancelled == [1]
    w.on_job_update(JobUpdate(1, 'average_spectrum', 'running', 2, 6, 'spectrum 8/12'))
    assert w.job_progress == (2, 6, 'spectrum 8/12') and w.job_id == 1
    w.on_job_update(JobUpdate(99, 'average_spectrum', 'done', result={}))  # someone else's job
    result = dict(_spectrum(), num=12, first_seed=7, layer='output')
    w.on_job_update(JobUpdate(1, 'average_spectrum', 'done', 6, 6, result=result, elapsed_sec=1.5))
    assert w.job_id is None and w.average is not None and w.average.label == 'avg 12 seeds from 7 (output)'
    paths = w.export_paths()
    assert paths['npz'].startswith(str(tmp_path)) and 'seed7' in paths['npz']
    w.start_export_npz(paths['npz'])  # the average is shown: written directly
    back = spectrum_io.load_spectrum(paths['npz'])
    np.testing.assert_array_equal(back['spectrum'], result['spectrum'])
    assert back['num'] == 12
    assert w.export_csv(paths['csv'])
    lines = open(paths['csv']).read().splitlines()
    assert lines[0] == 'file,angle_deg,freq_cycles_per_px,power_db' and len(lines) > 10
    w.export_png(paths['png'])
    assert 'not shown' in w.message
    w.plot_rect = (10.0, 20.0, 300.0, 200.0)
    w.export_png(paths['png'])
    assert viz.crops == [(paths['png'], (10.0, 20.0, 300.0, 200.0))]


def test_spectrum_lab_export_npz_of_the_current_view_runs_a_job(tmp_path):
    viz = _Viz(_net())
    w = SpectrumLabWidget(viz)
    w.start_export_npz(str(tmp_path / 'cur.npz'))
    assert viz.jobs[0][0] == 'view_spectrum'
    w.on_job_update(JobUpdate(1, 'view_spectrum', 'done', 1, 1, result=dict(_spectrum(), num=1)))
    assert spectrum_io.load_spectrum(str(tmp_path / 'cur.npz'))['num'] == 1
    w.start_export_npz(str(tmp_path / 'cur2.npz'))
    w.on_job_update(JobUpdate(2, 'view_spectrum', 'error', error='boom'))
    assert w.message == 'boom' and not (tmp_path / 'cur2.npz').exists()


def test_curves_json_is_plain():
    c = Curves.from_spectrum('x', _spectrum())
    doc = json.loads(json.dumps(c.to_json()))
    assert set(doc['profiles']) == {'freq_0', 'slice_0', 'freq_45', 'slice_45', 'freq_r', 'radial'}


# ---- equivariance ----------------------------------------------------------------------------------------------
def test_scale_shear_mirror_transform():
    m = np.asarray(make_input_transform(0.1, 0.0, 0.0, scale=2.0, shear=0.5, mirror=True))
    np.testing.assert_allclose(m, [[-2.0, 1.0, 0.1], [0.0, 2.0, 0.0], [0, 0, 1]], atol=1e-12)
    with pytest.raises(ValueError, match='scale'):
        make_input_transform(0, 0, 0, scale=0.0)
    w = EquivarianceWidget(_Viz(_net()))
    args = {}
    w.set_state({'mirror': True})
    w.update_request(args, 0.0)
    np.testing.assert_allclose(args['input_transform'], np.diag([-1.0, 1.0, 1.0]))
    assert args['lab_eq'] is True
    w.set_state({'scale': -4.0, 'shear': float('inf'), 'xlate_x': float('nan'), 'measure_num': 'x'})
    assert w.scale == 0.125 and w.shear == 0.0 and w.xlate_x == 0.0 and w.measure_num == 100


def test_equivariance_readout_text_and_sg2():
    w = EquivarianceWidget(_Viz(_net()))
    assert 'identity' in w.readout_text()
    w.on_result(
        types.SimpleNamespace(
            image=np.zeros((1, 1, 3)),
            lab=dict(eq_psnr_db=31.416, eq_kind='frac', eq_valid_frac=0.87, layer='output'),
        )
    )
    assert w.readout_text() == 'EQ 31.42 dB, fractional translation (EQ-T frac), 87% valid (output)'
    w.on_result(
        types.SimpleNamespace(
            image=np.zeros((1, 1, 3)), lab=dict(eq_psnr_db=None, eq_kind='affine', eq_valid_frac=0.0, layer='output')
        )
    )
    assert 'no valid pixels' in w.readout_text()
    sg2 = EquivarianceWidget(_Viz(_net(has_input_transform=False, arch='stylegan2')))
    args = {}
    sg2.update_request(args, 0.0)
    assert args['lab_eq'] is False and 'StyleGAN3' in sg2.readout_text()
    sg2.start_measure()  # greyed out: nothing starts


def test_measure_flow_appends_calc_metrics_lines(tmp_path):
    viz = _Viz(_net())
    w = EquivarianceWidget(viz)
    w.set_state({'measure_num': 8, 'measure_log': str(tmp_path / 'log' / 'eq.jsonl')})
    w.start_measure()
    assert viz.jobs == [('measure_equivariance', dict(num=8, metrics=['eqt50k_int', 'eqt50k_frac', 'eqr50k'], seed=0))]
    result = dict(results={'eqt50k_int': 40.0, 'eqt50k_frac': 30.0, 'eqr50k': 20.0}, num_samples=8, total_time=3.2,
                  total_time_str='3s', snapshot_pkl='models/default.pkl', timestamp=1.0)  # fmt: skip
    w.on_job_update(JobUpdate(1, 'measure_equivariance', 'done', 2, 2, result=result))
    lines = [json.loads(x) for x in (tmp_path / 'log' / 'eq.jsonl').read_text().splitlines()]
    assert [x['metric'] for x in lines] == ['eqt50k_int', 'eqt50k_frac', 'eqr50k']
    assert lines[0] == {'results': {'eqt50k_int': 40.0}, 'metric': 'eqt50k_int', 'total_time': 3.2,
                        'total_time_str': '3s', 'num_gpus': 1, 'num_samples': 8,
                        'snapshot_pkl': 'models/default.pkl', 'timestamp': 1.0}  # fmt: skip
    assert measure_log_lines({}) == []
