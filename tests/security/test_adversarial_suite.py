"""The standing adversarial suite (issue 11): every hostile file is refused or handled with a clear message, writes
no marker file, and stays within a memory cap and a time limit (run in a subprocess with RLIMIT_AS and a timeout)."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import resource
import subprocess
import sys

import pytest


def _import_sibling(name: str):
    """Imports tests/security/<name>.py (the suite runs with --import-mode=importlib: no package imports)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f'_security_{name}', pathlib.Path(__file__).with_name(f'{name}.py'))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hostile = _import_sibling('hostile')

MEMORY_CAP_BYTES = 3 << 30  # address space of the child: a bomb asking for gigabytes fails instead of swapping
TIMEOUT_SEC = 600  # the whole family list; each case has its own 20 s CPU-time limit in run_hostile.py
PEAK_RSS_MIB = 1500
LOAD_ERRORS = {'LoadError', 'ResourceLimitError', 'UnsafePickleError', 'UntrustedCodeError', 'MetricError'}


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))


def run_capped(cases: list[hostile.Case], folder: pathlib.Path) -> dict[str, dict]:
    """Runs run_hostile.py on `cases` in a memory-capped subprocess; returns its result line per case name."""
    spec = folder / 'cases.json'
    spec.write_text(json.dumps([dataclasses.asdict(c) for c in cases]))
    script = pathlib.Path(__file__).with_name('run_hostile.py')
    env = {k: v for k, v in os.environ.items() if k != 'SG3VIZ_TRUSTED_SHA256'}  # nothing pinned: detectors refused
    proc = subprocess.run(
        [sys.executable, str(script), str(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SEC,
        preexec_fn=_cap_memory,
        cwd=pathlib.Path(__file__).resolve().parents[2],
    )
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith('{'):
            item = json.loads(line)
            results[item['name']] = item
    assert proc.returncode == 0, f'runner died (rc {proc.returncode}): {proc.stderr[-3000:]}'
    return results


@pytest.fixture(scope='module')
def suite(tmp_path_factory):
    folder = tmp_path_factory.mktemp('hostile')
    cases = hostile.write_cases(folder)
    return cases, run_capped(cases, folder)


def _problem(case: hostile.Case, got: dict | None) -> str | None:
    import re

    if got is None:
        return 'no result (the runner stopped before it)'
    outcome, message = got['outcome'], got['message']
    if case.expect == 'ok':
        if outcome != 'ok':
            return f'expected to load and render, got {outcome}: {message[:300]}'
    elif case.expect == 'LoadError':
        if outcome not in LOAD_ERRORS:
            return f'expected a LoadError, got {outcome}: {message[:300]}'
    elif outcome != case.expect:
        return f'expected {case.expect}, got {outcome}: {message[:300]}'
    if case.match and not re.search(case.match, message, re.IGNORECASE):
        return f'message does not match {case.match!r}: {message[:300]}'
    if outcome != 'ok' and ('weights_only=False' in message or 'Traceback' in message):
        return f'message quotes internals: {message[:300]}'
    if got['cpu_seconds'] > 20:
        return f'took {got["cpu_seconds"]:.1f} s of CPU time'
    return None


def test_every_hostile_file_is_refused_or_handled(suite):
    cases, results = suite
    problems = {c.name: _problem(c, results.get(c.name)) for c in cases}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, '\n'.join(f'{k}: {v}' for k, v in problems.items())
    assert len(cases) >= 40


def test_no_marker_file_and_bounded_memory(suite):
    cases, results = suite
    assert not any(pathlib.Path(c.marker).exists() for c in cases if c.marker)
    peak = max(r['peak_rss_mib'] for r in results.values())
    assert peak < PEAK_RSS_MIB, f'peak RSS {peak:.0f} MiB'
