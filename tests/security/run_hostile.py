"""Loads hostile files one by one under the limits the suite asserts; run as a subprocess by the tests.

Usage: python tests/security/run_hostile.py CASES.json  (a list of `hostile.Case` dicts). The parent sets the memory
cap (RLIMIT_AS) and an overall timeout; each case here gets its own CPU-time limit (SIGPROF). One JSON line per case on
stdout: name, outcome (error class name or 'ok'), message, wall and CPU seconds, peak RSS in MiB.
"""

from __future__ import annotations

import json
import pathlib
import resource
import signal
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

CASE_CPU_SECONDS = 20  # CPU time (SIGPROF), so a machine shared with other jobs does not fail a case


class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout(f'case used more than {CASE_CPU_SECONDS} s of CPU time')


def _load(case: dict) -> str:
    import numpy as np
    import torch

    if case['kind'] == 'detector':
        from metrics import metric_utils

        detector, _ = metric_utils.load_detector(case['path'], cache_dir=pathlib.Path(case['path']).parent / 'cache')
        metric_utils.run_detector(detector, torch.zeros([1, 3, 8, 8], dtype=torch.uint8))
        return 'ok'
    from engine import loading

    G = loading.load_network_pkl(case['path'])['G_ema']
    z = torch.from_numpy(np.random.RandomState(0).randn(1, G.z_dim).astype(np.float32))
    with torch.no_grad():
        img = G(z, torch.zeros([1, G.c_dim]), noise_mode='const')
    if img.shape != (1, G.img_channels, G.img_resolution, G.img_resolution) or not torch.isfinite(img).all():
        return f'bad render {tuple(img.shape)}'
    if (
        G.num_ws > 64
        or G.img_resolution > 4096
        or not all(n.startswith(('L', 'input')) for n in G.synthesis.layer_names)
    ):
        return 'attributes from the file'
    return 'ok'


def main() -> None:
    cases = json.loads(pathlib.Path(sys.argv[1]).read_text())
    import engine.loading  # noqa: F401  (imports are not part of any case's time)
    import metrics.metric_utils  # noqa: F401
    import training.augment  # noqa: F401
    import training.networks_stylegan2  # noqa: F401
    import training.networks_stylegan3  # noqa: F401

    signal.signal(signal.SIGPROF, _alarm)
    for case in cases:
        start, cpu_start = time.monotonic(), time.process_time()
        signal.setitimer(signal.ITIMER_PROF, CASE_CPU_SECONDS)
        try:
            outcome, message = _load(case), ''
        except CaseTimeout as e:
            outcome, message = 'timeout', str(e)
        except MemoryError as e:
            outcome, message = 'MemoryError', str(e)
        except Exception as e:
            outcome, message = type(e).__name__, str(e)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        line = dict(name=case['name'], outcome=outcome, message=message[:2000], seconds=time.monotonic() - start)
        line['cpu_seconds'] = time.process_time() - cpu_start
        print(json.dumps(dict(line, peak_rss_mib=rss_mib)), flush=True)


if __name__ == '__main__':
    main()
