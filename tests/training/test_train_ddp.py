"""Two gloo processes on CPU produce the same averaged gradients as one process on the whole batch."""

import pathlib
import subprocess
import sys
import textwrap

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import torch
    from training.loss import StyleGAN2Loss
    from training.networks_stylegan2 import Discriminator, Generator
    from training.training_loop import _Phase, run_phase

    rank, world, init_file, out = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    torch.set_num_threads(1)
    if world > 1:
        torch.distributed.init_process_group('gloo', init_method='file://' + init_file, rank=rank, world_size=world)
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=128, channel_max=8,
                  mapping_kwargs=dict(num_layers=2))
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=128, channel_max=8)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith('noise_strength'):
                p.zero_()  # Deterministic synthesis in every process.
    G.requires_grad_(False)
    D.requires_grad_(False)
    g = torch.Generator().manual_seed(1)
    real = torch.randn([8, 3, 16, 16], generator=g)
    z = torch.randn([8, 8], generator=g)
    c = torch.zeros([8, 0])
    chunks = lambda t: list(t.split(4)) if world == 1 else [t.split(4)[rank]]
    loss = StyleGAN2Loss('cpu', G, D, r1_gamma=1.5)
    grads = {}
    for name, module in [('Gmain', G), ('Dmain', D), ('Dreg', D)]:
        phase = _Phase(name, module, torch.optim.SGD(module.parameters(), lr=0), 16 if name == 'Dreg' else 1)
        run_phase(phase, loss, chunks(real), chunks(c), chunks(z), chunks(c), cur_nimg=0, num_gpus=world)
        for pname, p in module.named_parameters():
            if p.grad is not None:
                grads[name + '/' + pname] = p.grad.numpy().copy()
    np.savez(out, **grads)
    if world > 1:
        torch.distributed.destroy_process_group()
    """
)


def test_two_process_gloo_matches_one_process(tmp_path):
    script = tmp_path / 'worker.py'
    script.write_text(WORKER)
    init_file = tmp_path / 'init'

    def start(rank, world, out):
        args = [sys.executable, str(script), str(REPO), str(rank), str(world), str(init_file), str(out)]
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    procs = [start(0, 1, tmp_path / 'single.npz'), start(0, 2, tmp_path / 'r0.npz'), start(1, 2, tmp_path / 'r1.npz')]
    for proc in procs:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output[-3000:]
    single = np.load(tmp_path / 'single.npz')
    r0 = np.load(tmp_path / 'r0.npz')
    r1 = np.load(tmp_path / 'r1.npz')
    assert set(single.files) == set(r0.files) == set(r1.files)
    assert any(k.startswith('Gmain/') for k in single.files) and any(k.startswith('Dreg/') for k in single.files)
    for key in single.files:
        if key.endswith('noise_strength'):
            continue  # Its gradient depends on the random noise drawn in each process.
        np.testing.assert_array_equal(r0[key], r1[key], err_msg=key)  # All ranks hold the same averaged grads.
        np.testing.assert_allclose(r0[key], single[key], rtol=1e-4, atol=1e-6, err_msg=key)
