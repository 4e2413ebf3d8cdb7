"""Fuzzes the safe loader with mutations of a valid small network pickle (hypothesis; run by test_fuzz.py).

Usage: python tests/security/fuzz_pickles.py WORKDIR MAX_EXAMPLES. Every mutated file must either load in safe mode
into a generator that renders (an image of the right shape) or raise our `LoadError` (or a subclass); anything
else -- another exception, a hang (SIGPROF after a CPU-time limit per example), a marker file -- fails. The parent
runs this under a memory cap. Prints 'FUZZ OK <n> examples, <k> loaded ...' at the end.
"""

from __future__ import annotations

import pathlib
import pickle
import pickletools
import signal
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from engine import loading  # noqa: E402

EXAMPLE_CPU_SECONDS = 20

SG3_KWARGS = dict(
    z_dim=4, c_dim=0, w_dim=4, img_resolution=16, img_channels=1, channel_base=64, channel_max=4, num_layers=3,
    mapping_kwargs=dict(num_layers=1),
)  # fmt: skip


class ExampleTimeout(Exception):
    pass


def _timeout(signum, frame):
    raise ExampleTimeout(f'an example used more than {EXAMPLE_CPU_SECONDS} s of CPU time')


def main() -> None:
    from training import networks_stylegan3

    workdir, max_examples = pathlib.Path(sys.argv[1]), int(sys.argv[2])
    torch.manual_seed(0)
    G = networks_stylegan3.Generator(**SG3_KWARGS).eval()
    valid = pickle.dumps({'G_ema': G, 'training_set_kwargs': {'resolution': 16, 'max_size': np.int64(3)}})
    # Opcode positions: mutations aimed at the structure (most bytes are tensor data inside storage blobs).
    positions = [pos for _op, _arg, pos in pickletools.genops(valid)]
    marker = workdir / 'PWNED'
    count = [0]
    loaded = [0]
    signal.signal(signal.SIGPROF, _timeout)

    edit = st.tuples(st.sampled_from(positions), st.integers(0, 6), st.binary(min_size=0, max_size=6))

    @settings(
        max_examples=max_examples, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(edits=st.lists(edit, min_size=1, max_size=4), cut=st.one_of(st.none(), st.integers(1, len(valid) - 1)))
    def check(edits, cut):
        data = bytearray(valid)
        for pos, offset, new in edits:
            start = min(pos + offset, len(data))
            data[start : start + len(new)] = new
        if cut is not None:
            data = data[:cut]
        path = workdir / 'mutant.pkl'
        path.write_bytes(bytes(data))
        count[0] += 1
        signal.setitimer(signal.ITIMER_PROF, EXAMPLE_CPU_SECONDS)
        try:
            try:
                G2 = loading.load_network_pkl(path)['G_ema']
            except loading.LoadError:
                return
            z = torch.zeros([1, G2.z_dim])
            with torch.no_grad():
                img = G2(z, torch.zeros([1, G2.c_dim]), noise_mode='const')
            assert img.shape == (1, G2.img_channels, G2.img_resolution, G2.img_resolution), img.shape
            loaded[0] += 1
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            assert not marker.exists()

    check()
    print(f'FUZZ OK {count[0]} examples, {loaded[0]} loaded and rendered, the rest refused', flush=True)


if __name__ == '__main__':
    main()
