"""Issue 11: a bounded hypothesis fuzz of the safe loader, in a memory-capped subprocess with a timeout."""

from __future__ import annotations

import pathlib
import resource
import subprocess
import sys

import pytest

pytest.importorskip('hypothesis')

MAX_EXAMPLES = 100
MEMORY_CAP_BYTES = 3 << 30


def test_mutated_pickles_load_and_render_or_raise_load_error(tmp_path):
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))

    script = pathlib.Path(__file__).with_name('fuzz_pickles.py')
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(MAX_EXAMPLES)],
        capture_output=True,
        text=True,
        timeout=900,
        preexec_fn=cap,
    )
    assert proc.returncode == 0 and 'FUZZ OK' in proc.stdout, proc.stdout[-2000:] + proc.stderr[-6000:]
    assert int(proc.stdout.split('FUZZ OK')[1].split()[0]) >= MAX_EXAMPLES // 2
