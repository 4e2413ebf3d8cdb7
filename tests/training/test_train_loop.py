"""Training loop end to end on tiny networks: presets, outputs, snapshots (safe-mode loadable), resume, ADA."""

import json
import math
import pathlib
import pickle

import numpy as np
import PIL.Image
import pytest
import torch

import train
from training import training_loop
from training.training_loop import TrainingError, ada_adjust, ema_beta, lazy_reg_opt_kwargs


def make_dataset(path: pathlib.Path, res=16, num=8, seed=0) -> pathlib.Path:
    """A folder of `num` RGB squares on white, `res` px."""
    path.mkdir(parents=True, exist_ok=True)
    rnd = np.random.RandomState(seed)
    for i in range(num):
        img = np.full([res, res, 3], 255, np.uint8)
        x0, y0 = rnd.randint(0, res // 2, 2)
        img[y0 : y0 + res // 3, x0 : x0 + res // 3] = rnd.randint(0, 255, 3)
        PIL.Image.fromarray(img).save(path / f'img{i:03d}.png')
    return path


def tiny_options(cfg, data, res=16, kimg=0.004, **overrides):
    small_sg3 = cfg != 'stylegan2'
    c = train.build_training_options(
        cfg=cfg, data=str(data), gpus=1, batch=4, gamma=1, kimg=kimg, tick=0.004, snap=1,
        cbase=128 if small_sg3 else 256, cmax=8 if small_sg3 else 16, workers=0, device_type='cpu',
        dataset_resolution=res, **overrides,
    )  # fmt: skip
    c['G_kwargs'].update(z_dim=16, w_dim=16)
    c['grid_size'] = [2, 2]
    return c


def read_stats(run_dir):
    return [json.loads(line) for line in (pathlib.Path(run_dir) / 'stats.jsonl').read_text().splitlines()]


@pytest.fixture(scope='module')
def dataset16(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp('data') / 'squares16')


@pytest.fixture(scope='module')
def sg2_run(dataset16, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp('runs') / 'sg2'
    c = tiny_options('stylegan2', dataset16, kimg=0.008)
    result = training_loop.launch_training(c, run_dir=run_dir, device='cpu')
    return run_dir, result


def test_sg2_outputs_losses_and_snapshot(sg2_run):
    run_dir, result = sg2_run
    assert result['cur_nimg'] == 8
    for name in [
        'log.txt',
        'training_options.json',
        'reals.png',
        'fakes_init.png',
        'fakes000000.008.png',
        'stats.jsonl',
    ]:
        assert (run_dir / name).is_file(), name
    stats = read_stats(run_dir)
    assert len(stats) == 2  # Ticks after the first iteration and at the end.
    for key in ['Loss/G/loss', 'Loss/D/loss', 'Loss/scores/real', 'Loss/scores/fake', 'Loss/D/reg', 'Loss/G/reg']:
        assert any(key in s for s in stats), key
        assert all(math.isfinite(s[key]['mean']) for s in stats if key in s), key
    assert 'tick 1' in (run_dir / 'log.txt').read_text()
    options = json.loads((run_dir / 'training_options.json').read_text())
    assert options['G_reg_interval'] == 4 and options['loss_kwargs']['pl_weight'] == 2

    snapshot = run_dir / 'network-snapshot-000000.008.pkl'  # kimg with thousandths: ticks < 1 kimg
    with open(snapshot, 'rb') as f:
        data = pickle.load(f)  # The standard pickle module (our persistent classes).
    assert set(data) >= {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}
    assert data['progress']['cur_nimg'] == 8
    assert not list(run_dir.glob('.*.tmp'))  # Atomic writes leave no temporaries.


def test_snapshot_loads_in_safe_mode(sg2_run):
    loading = pytest.importorskip('engine.loading')
    run_dir, _ = sg2_run
    data = loading.load_network_pkl(run_dir / 'network-snapshot-000000.008.pkl')
    G = data['G_ema']
    img = G(torch.randn([1, G.z_dim]), torch.zeros([1, G.c_dim]), noise_mode='const')
    assert img.shape == (1, 3, 16, 16) and torch.isfinite(img).all()


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_every_tick_snapshot_survives_below_one_kimg(sg2_run):
    """Issue 11 item 5: ticks of 4 images used to write network-snapshot-000000.pkl twice (the second overwrote)."""
    run_dir, _ = sg2_run
    snapshots = sorted(p.name for p in run_dir.glob('network-snapshot-*.pkl'))
    assert snapshots == ['network-snapshot-000000.004.pkl', 'network-snapshot-000000.008.pkl']
    nimg = [pickle.loads((run_dir / name).read_bytes())['progress']['cur_nimg'] for name in snapshots]
    assert nimg == [4, 8]
    assert sorted(p.name for p in run_dir.glob('fakes0*.png')) == ['fakes000000.004.png', 'fakes000000.008.png']
    from engine import loading

    assert loading.resolve_source(run_dir).name == 'network-snapshot-000000.008.pkl'  # newest by image count
    assert training_loop.snapshot_kimg_from_name('network-snapshot-000002.500.pkl') == 2.5


def test_snapshot_names_never_overwrite(tmp_path):
    assert training_loop.progress_tag(12_345, 4) == '000012'
    assert training_loop.progress_tag(12_345, 0.5) == '000012.345'
    (tmp_path / 'network-snapshot-000012.pkl').write_bytes(b'old')
    path = training_loop.unused_path(tmp_path / 'network-snapshot-000012.pkl')
    assert path.name == 'network-snapshot-000012-2.pkl'


def test_resume_continues_kimg(sg2_run, tmp_path):
    run_dir, _ = sg2_run
    data = json.loads((run_dir / 'training_options.json').read_text())['training_set_kwargs']['path']
    c = tiny_options('stylegan2', pathlib.Path(data), kimg=0.012, resume=str(run_dir))
    c['image_snapshot_ticks'] = None
    # Issue 11 item 6: temporaries of a killed run (beside the resume file and in the output dir) are removed.
    dead = _dead_pid()
    stale = [run_dir / f'.fakes000000.png.{dead}.0123abcd.tmp', tmp_path / 'resumed' / f'.x.pkl.{dead}.89abcdef.tmp']
    stale[1].parent.mkdir()
    live = run_dir / '.network-snapshot-000001.pkl.1.0123abcd.tmp'  # pid 1 is alive: another run's file, kept
    for p in stale + [live]:
        p.write_bytes(b'partial')
    result = training_loop.launch_training(c, run_dir=tmp_path / 'resumed', device='cpu')
    assert not any(p.exists() for p in stale) and live.exists()
    live.unlink()
    assert result['cur_nimg'] == 12  # 8 from the snapshot + one batch of 4.
    stats = read_stats(tmp_path / 'resumed')
    assert stats[0]['Progress/kimg']['mean'] == pytest.approx(0.012)
    assert 'from 0.008 kimg' in (tmp_path / 'resumed' / 'log.txt').read_text()


@pytest.mark.parametrize('value', [-(10**9), float('nan'), 'abc', 10**20, 2.5, True, None])
def test_resume_with_bad_progress_names_the_file(sg2_run, tmp_path, value):
    """Issue 11 item 7: progress.cur_nimg must be a whole number of images; the error names the file."""
    run_dir, _ = sg2_run
    data = pickle.loads((run_dir / 'network-snapshot-000000.008.pkl').read_bytes())
    data['progress']['cur_nimg'] = value
    path = tmp_path / 'bad-progress.pkl'
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(TrainingError, match=r'progress\.cur_nimg in .*bad-progress\.pkl must be a whole number'):
        training_loop.load_resume(str(path))


def test_resume_other_resolution_is_a_clear_error(sg2_run):
    run_dir, _ = sg2_run
    with pytest.raises(TrainingError, match='resolution 32'):
        training_loop.load_resume(str(run_dir / 'network-snapshot-000000.008.pkl'), img_resolution=32)


@pytest.mark.parametrize('cfg', ['stylegan3-t', 'stylegan3-r'])
def test_sg3_presets_one_tick(cfg, dataset16, tmp_path):
    c = tiny_options(cfg, dataset16, kimg=0.004, aug='fixed', p=0.5)
    c['image_snapshot_ticks'] = None
    result = training_loop.launch_training(c, run_dir=tmp_path / cfg, device='cpu')
    assert result['cur_nimg'] == 4 and result['augment_p'] == 0.5
    stats = read_stats(tmp_path / cfg)
    assert math.isfinite(stats[-1]['Loss/G/loss']['mean']) and math.isfinite(stats[-1]['Loss/D/loss']['mean'])
    assert (tmp_path / cfg / 'network-snapshot-000000.004.pkl').is_file()
    options = json.loads((tmp_path / cfg / 'training_options.json').read_text())
    if cfg == 'stylegan3-r':
        assert options['G_kwargs']['conv_kernel'] == 1 and options['loss_kwargs']['blur_init_sigma'] == 10
        assert options['G_kwargs']['channel_base'] == 2 * options['D_kwargs']['channel_base']


def test_ada_p_moves_with_the_sign_of_d():
    # D overfits (reals scored positive more often than the target): p rises; otherwise it falls, never below 0.
    p = 0.0
    for _ in range(10):
        p = ada_adjust(p, sign_mean=0.9, ada_target=0.6, batch_size=64, ada_interval=4, ada_kimg=500)
    assert p == pytest.approx(10 * 64 * 4 / 500e3)
    p_down = ada_adjust(p, sign_mean=0.2, ada_target=0.6, batch_size=64, ada_interval=4, ada_kimg=500)
    assert p_down < p
    assert ada_adjust(0.0, sign_mean=-1.0, ada_target=0.6, batch_size=64, ada_interval=4, ada_kimg=500) == 0.0
    assert ada_adjust(0.3, sign_mean=float('nan'), ada_target=0.6, batch_size=64, ada_interval=4, ada_kimg=500) == 0.3


def test_ada_p_rises_in_training_with_a_positive_d(dataset16, tmp_path):
    # A real training run whose D is biased to score everything positive: E[sign(D(real))] = 1 > target.
    c = tiny_options('stylegan2', dataset16, kimg=0.008)
    c['ada_interval'] = 1
    c['ada_kimg'] = 0.1
    c['image_snapshot_ticks'] = c['network_snapshot_ticks'] = None
    c['D_opt_kwargs']['lr'] = 0  # Keep D's positive bias.
    c['G_opt_kwargs']['lr'] = 0
    orig = training_loop._build_networks

    def biased(*args, **kwargs):
        G, D, G_ema = orig(*args, **kwargs)
        with torch.no_grad():
            D.b4.out.bias.fill_(100.0)
        return G, D, G_ema

    training_loop._build_networks = biased
    try:
        result = training_loop.launch_training(c, run_dir=tmp_path / 'ada', device='cpu')
    finally:
        training_loop._build_networks = orig
    assert result['augment_p'] == pytest.approx(2 * 4 * 1 / 100)  # Two adjustments of batch * interval / nimg.


def test_schedule_helpers():
    assert ema_beta(32, cur_nimg=10**9, ema_kimg=10, ema_rampup=0.05) == pytest.approx(0.5 ** (32 / 10000))
    assert ema_beta(32, cur_nimg=1000, ema_kimg=10, ema_rampup=0.05) == pytest.approx(0.5 ** (32 / 50))
    kw = lazy_reg_opt_kwargs(dict(lr=0.002, betas=[0, 0.99]), 16)
    assert kw['lr'] == pytest.approx(0.002 * 16 / 17) and kw['betas'][1] == pytest.approx(0.99 ** (16 / 17))
    assert training_loop.snapshot_kimg_from_name('x/network-snapshot-000123.pkl') == 123
    assert training_loop.next_run_dir('/nonexistent-dir-xyz', 'a').name == '00000-a'


def test_resume_other_architecture_is_a_clear_error(sg2_run, dataset16, tmp_path):
    run_dir, _ = sg2_run
    c = tiny_options('stylegan3-t', dataset16, resume=str(run_dir / 'network-snapshot-000000.008.pkl'))
    c['image_snapshot_ticks'] = c['network_snapshot_ticks'] = None
    with pytest.raises(TrainingError, match='--cfg'):
        training_loop.launch_training(c, run_dir=tmp_path / 'bad', device='cpu')
