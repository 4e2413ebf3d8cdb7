"""Checkpoint scrubbing: a training run's snapshots by kimg, their metrics, background preloading and scrub
timelines (no torch, no GUI: the visualizer process imports this module).

A *training run* is a directory holding ``network-snapshot-<kimg>.pkl`` files (``train.py`` writes one every
``--snap`` ticks, see ``training.training_loop``) and, with ``--metrics``, one ``metric-<name>.jsonl`` per metric:
one JSON object per line, ``{"results": {name: value, ...}, "metric": name, "snapshot_pkl": file, ...}``
(``metrics.metric_main.report_metric``; ``snapshot_pkl`` is relative to the run directory, or a path).

- :func:`load_run` lists a run's snapshots oldest first (by the kimg in the name) with the metrics of each;
  :func:`run_of` finds the run a network source belongs to; :func:`scrub_runs` lists the runs under a folder (the
  visualizer's ``--browse-dir``).
- :func:`read_metrics` reads the metric files with limits (file count, bytes, lines); malformed lines are skipped
  and counted in a note, never fatal.
- :func:`preload_order` picks the neighbours of the scrub position worth loading ahead, and :func:`preload_job` (the
  render process's ``'preload_networks'`` job, ``engine.jobs``) loads them into the renderer's network cache
  without rendering, so that moving the slider shows the next snapshot at once.
- :func:`make_scrub_timeline` writes the scrub as a keyframe timeline (``engine.states``): one keyframe per
  snapshot with the same latent and view, the snapshot (``pkl``) being the keyframed setting, so that
  ``gen_video.py --timeline`` renders it like any other timeline.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import pathlib
import time
from collections.abc import Generator, Iterable, Sequence
from typing import Any

from engine import sources
from engine.protocol import RenderRequest

logger = logging.getLogger(__name__)

__all__ = [
    'MAX_SNAPSHOTS',
    'ScrubRun',
    'Snapshot',
    'load_run',
    'make_scrub_timeline',
    'preload_job',
    'preload_order',
    'read_metrics',
    'run_of',
    'scrub_runs',
    'scrub_states',
    'snapshots_from_paths',
]

METRIC_GLOB = 'metric-*.jsonl'
MAX_SNAPSHOTS = 100_000  # A run with more is listed by its newest MAX_SNAPSHOTS (with a note).
MAX_METRIC_FILES = 64
MAX_METRIC_BYTES = 16 << 20  # Per file: the last 16 MiB are read (metric lines are appended, newest last).
MAX_METRIC_LINES = 200_000  # Per file, the last ones.
MAX_NOTES = 20
SECONDS_PER_SNAPSHOT_RANGE = (0.05, 600.0)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One network snapshot of a training run.

    Attributes:
        path: the pickle's path (as listed; on a render server, a path on the server).
        nimg: training progress in images, from the file name (``kimg * 1000``).
        metrics: metric name -> value of the newest ``metric-*.jsonl`` line about this snapshot ({} when none).
    """

    path: str
    nimg: int
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return pathlib.PurePath(self.path).name

    @property
    def kimg(self) -> float:
        return self.nimg / 1000.0

    @property
    def kimg_text(self) -> str:
        """kimg as train.py names it: ``40`` or ``0.250`` (thousandths only when needed)."""
        return f'{self.nimg // 1000}' if self.nimg % 1000 == 0 else f'{self.kimg:.3f}'


@dataclasses.dataclass(frozen=True)
class ScrubRun:
    """A training run ready to scrub: ``snapshots`` oldest first, the metric names found, and notes about what was
    skipped (malformed metric lines, limits)."""

    run_dir: str
    snapshots: tuple[Snapshot, ...]
    metric_names: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        out = {_norm(s.path): i for i, s in enumerate(self.snapshots)}
        if self.snapshots:
            out[_norm(self.run_dir)] = len(self.snapshots) - 1  # A run directory loads its newest snapshot.
        return out

    def index_of(self, source: str | os.PathLike | None) -> int | None:
        """Index of the snapshot ``source`` names (a snapshot path, or the run directory = its newest), else None."""
        if source is None or not self.snapshots:
            return None
        return self._index.get(_norm(source))


def _norm(path: str | os.PathLike) -> str:
    """A comparable form of a path: expanded, absolute, symlinks resolved where the file exists locally."""
    text = os.fspath(path)
    if '://' in text:
        return text
    p = os.path.expanduser(text)
    return os.path.realpath(p) if os.path.exists(p) else os.path.normpath(os.path.abspath(p))


def snapshots_from_paths(paths: Iterable[str]) -> list[Snapshot]:
    """The ``network-snapshot-*.pkl`` among ``paths`` as :class:`Snapshot` objects (no metrics), oldest first;
    other names are left out. For listings that come from elsewhere (a render server's file list)."""
    snaps = []
    for p in paths:
        nimg = sources.snapshot_nimg(str(p))
        if nimg is not None:
            snaps.append(Snapshot(str(p), nimg))
    return sorted(snaps, key=lambda s: (s.nimg, s.name))


def load_run(run_dir: str | os.PathLike, *, with_metrics: bool = True) -> ScrubRun:
    """A training run's snapshots, oldest first by kimg, each with its metrics.

    Args:
        run_dir: the run directory (``~`` expanded).
        with_metrics: read ``metric-*.jsonl`` (:func:`read_metrics`).

    Returns:
        The :class:`ScrubRun` (no snapshots when the directory is missing or holds none; the notes say so).
    """
    d = pathlib.Path(run_dir).expanduser()
    notes: list[str] = []
    if not d.is_dir():
        return ScrubRun(str(run_dir), (), (), (f'{run_dir} is not a directory',))
    snaps = snapshots_from_paths(str(p) for p in sources.list_snapshots(d))
    if not snaps:
        notes.append(f'no {sources.SNAPSHOT_GLOB} in {d}')
    if len(snaps) > MAX_SNAPSHOTS:
        notes.append(f'{len(snaps)} snapshots; listing the newest {MAX_SNAPSHOTS}')
        snaps = snaps[-MAX_SNAPSHOTS:]
    names: tuple[str, ...] = ()
    if with_metrics:
        by_file, metric_notes = read_metrics(d)
        notes += metric_notes
        snaps = [dataclasses.replace(s, metrics=dict(by_file.get(s.name, {}))) for s in snaps]
        names = tuple(sorted({k for m in by_file.values() for k in m}))
    return ScrubRun(str(run_dir), tuple(snaps), names, tuple(notes[:MAX_NOTES]))


def run_signature(run_dir: str | os.PathLike) -> tuple:
    """Cheap fingerprint of a run's listing (the directory's and the metric files' modification times and sizes):
    when it changes, :func:`load_run` would answer differently (a new snapshot, a new metric line)."""
    d = pathlib.Path(run_dir).expanduser()
    try:
        sig: list = [d.stat().st_mtime_ns]
        for p in sorted(d.glob(METRIC_GLOB))[:MAX_METRIC_FILES]:
            st = p.stat()
            sig.append((p.name, st.st_size, st.st_mtime_ns))
    except OSError:
        return ('missing',)
    return tuple(sig)


def run_of(source: str | os.PathLike | None) -> pathlib.Path | None:
    """The training run a network source belongs to: a run directory itself, or the folder of a snapshot pickle
    (a ``.pkl`` whose folder holds ``network-snapshot-*.pkl`` files). None for URLs, the bundled default and
    pickles outside any run."""
    try:
        src = sources.parse_source(source)
    except sources.SourceError:
        return None
    if src.kind in ('default', 'url') or src.text is None:
        return None
    if src.kind == 'run_dir':
        d = pathlib.Path(src.text).expanduser()
        return d if any(sources.snapshot_nimg(p.name) is not None for p in sources.list_snapshots(d)) else None
    try:
        path = sources.local_path(src.text)
    except sources.SourceError:
        path = pathlib.Path(src.text).expanduser() if src.kind == 'path' else None
    if path is None:
        return None
    parent = path.parent
    if sources.snapshot_nimg(path.name) is not None:
        return parent
    return parent if any(sources.snapshot_nimg(p.name) is not None for p in sources.list_snapshots(parent)) else None


def scrub_runs(browse_dir: str | os.PathLike | None) -> list[tuple[str, int]]:
    """The runs under ``browse_dir`` worth scrubbing: [(run dir, number of snapshots), ...] for every folder with at
    least one ``network-snapshot-*.pkl`` (``browse_dir`` itself first when it holds some, then newest run first)."""
    out = []
    for folder, pkls in sources.list_runs(browse_dir):
        n = sum(sources.snapshot_nimg(p) is not None for p in pkls)
        if n:
            out.append((folder, n))
    return out


# ----------------------------------------------------------------------------------------------------------------
# Metrics.


def _tail_lines(path: pathlib.Path) -> tuple[list[str], bool]:
    """The last ``MAX_METRIC_BYTES`` of a file as lines (a cut first line dropped), and whether it was cut."""
    with open(path, 'rb') as f:
        size = f.seek(0, os.SEEK_END)
        cut = size > MAX_METRIC_BYTES
        f.seek(size - MAX_METRIC_BYTES if cut else 0)
        data = f.read(MAX_METRIC_BYTES)
    lines = data.decode('utf-8', errors='replace').splitlines()
    if cut and lines:
        lines = lines[1:]
    if len(lines) > MAX_METRIC_LINES:
        lines, cut = lines[-MAX_METRIC_LINES:], True
    return lines, cut


def _parse_metric_line(line: str) -> tuple[str, dict[str, float]] | str:
    """(snapshot file name, {metric: value}) of one jsonl line, or why it is malformed."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return 'not JSON'
    if not isinstance(rec, dict):
        return f'a JSON {type(rec).__name__}, not an object'
    snap, results = rec.get('snapshot_pkl'), rec.get('results')
    if not isinstance(snap, str) or not snap.strip():
        return 'no "snapshot_pkl" file name'
    if not isinstance(results, dict):
        return 'no "results" object'
    values = {str(k): float(v) for k, v in results.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if not values:
        return 'no numeric result'
    return pathlib.PurePath(snap.strip().replace('\\', '/')).name, values


def read_metrics(run_dir: str | os.PathLike) -> tuple[dict[str, dict[str, float]], list[str]]:
    """The metrics a run recorded per snapshot.

    Reads every ``metric-*.jsonl`` of ``run_dir`` (at most ``MAX_METRIC_FILES`` files, of each the last
    ``MAX_METRIC_BYTES`` / ``MAX_METRIC_LINES``). Each line is ``{"results": {name: value}, "snapshot_pkl": file,
    ...}``; a later line about the same snapshot and metric replaces an earlier one (a re-evaluation).

    Returns:
        ({snapshot file name: {metric name: value}}, notes): notes say which lines were skipped and why
        (not JSON, no snapshot name, no numeric result) and which limits applied. Never raises for bad files.
    """
    d = pathlib.Path(run_dir).expanduser()
    out: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    try:
        files = sorted(p for p in d.glob(METRIC_GLOB) if p.is_file())
    except OSError as e:
        return {}, [f'cannot list metric files in {d}: {e}']
    if len(files) > MAX_METRIC_FILES:
        notes.append(f'{len(files)} metric files; reading the first {MAX_METRIC_FILES}')
        files = files[:MAX_METRIC_FILES]
    for p in files:
        try:
            lines, cut = _tail_lines(p)
        except OSError as e:
            notes.append(f'{p.name}: unreadable ({e}); skipped')
            continue
        if cut:
            notes.append(f'{p.name}: large file; read its last {len(lines)} lines')
        bad: list[str] = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            parsed = _parse_metric_line(line)
            if isinstance(parsed, str):
                bad.append(f'line {i + 1}: {parsed}')
                continue
            name, values = parsed
            out.setdefault(name, {}).update(values)
        if bad:
            notes.append(f'{p.name}: skipped {len(bad)} malformed line{"s" if len(bad) > 1 else ""} ({bad[0]})')
            logger.warning('%s', notes[-1])
    return out, notes


def format_metric(value: float) -> str:
    """A metric value for display: 4 significant digits (``12.35``, ``0.0123``, ``nan``)."""
    return 'nan' if math.isnan(value) else f'{value:.4g}'


# ----------------------------------------------------------------------------------------------------------------
# Preloading.


def preload_order(num: int, index: int, count: int, direction: int = 1) -> list[int]:
    """Which snapshots to load ahead of scrub position ``index`` (of ``num``): the nearest ones first, the side the
    user is moving to (``direction`` +1 forward, -1 back, 0 either) before the other; at most ``count``.

    >>> preload_order(10, 4, 3, +1)
    [5, 3, 6]
    """
    if num <= 0 or count <= 0:
        return []
    index = min(max(int(index), 0), num - 1)
    first = -1 if direction < 0 else 1
    out: list[int] = []
    for step in range(1, num):
        for i in (index + first * step, index - first * step):
            if 0 <= i < num and i not in out:
                out.append(i)
                if len(out) >= count:
                    return out
    return out


def preload_job(
    ctx: Any, *, request: Any = None, sources: Sequence[str] = (), trust: bool = False, poll_sec: float = 0.02
) -> Generator[Any, None, dict]:
    """Render-process job ``'preload_networks'``: loads networks into the renderer's network cache without rendering.

    Loads run in the cache's background threads (``engine.net_cache.NetCache.prefetch``), so renders go on
    meanwhile. At most ``cache.max_pkls - 1`` sources are kept (the rest would evict the network on screen or each
    other). Cancelling the job stops waiting and starting loads; a load already running finishes in the background
    and stays cached (a thread cannot be stopped).

    Args:
        ctx: the worker's renderer (its ``net_cache`` is used).
        request: unused (jobs receive the current request).
        sources: network sources to load, most wanted first.
        trust: load with trust=True (the user trusted these files).
        poll_sec: seconds between looks at the loads.

    Yields:
        ``engine.jobs.Progress`` (done = finished loads); ``data`` = {'state': {source: 'ready'|'loading'|'failed'}}
        whenever a state changes.

    Returns:
        {'state': {source: state}, 'errors': {source: message}, 'dropped': [sources beyond the cache size]}.

    Raises:
        JobError: the renderer has no network cache, or ``sources`` is not a list of strings.
    """
    from engine.jobs import JobError, Progress

    cache = getattr(ctx, 'net_cache', None)
    if cache is None or not hasattr(cache, 'state'):
        raise JobError('preload_networks: this renderer has no network cache to load into')
    if isinstance(sources, str) or not all(isinstance(s, str) for s in sources):
        raise JobError(f'preload_networks: sources must be a list of paths, got {sources!r}')
    room = max(int(getattr(cache, 'max_pkls', 2)) - 1, 1)
    wanted, dropped = list(dict.fromkeys(sources))[:room], list(dict.fromkeys(sources))[room:]
    trust = bool(trust)
    states: dict[str, str] = {}
    while True:
        changed = False
        for s in wanted:
            st = cache.state(s, trust)
            if st == 'absent':
                cache.prefetch(s, trust)
                st = cache.state(s, trust)
                st = 'loading' if st == 'absent' else st  # Too many loads in flight: started on a later step.
            changed |= states.get(s) != st
            states[s] = st
        done = sum(st in ('ready', 'failed') for st in states.values())
        data = {'state': dict(states)} if changed else None
        yield Progress(done, len(wanted), f'{done}/{len(wanted)} networks loaded ahead', data=data)
        if done >= len(wanted):
            break
        time.sleep(max(float(poll_sec), 0.0))
    errors = {}
    for s, st in states.items():
        failure = cache.peek_failure(s, trust) if st == 'failed' else None
        if failure is not None:
            errors[s] = failure.message
    return {'state': states, 'errors': errors, 'dropped': dropped}


# ----------------------------------------------------------------------------------------------------------------
# Scrub timelines.


def scrub_states(snapshots: Sequence[Snapshot | str], base: RenderRequest) -> list[RenderRequest]:
    """One render state per snapshot: ``base`` (latent, truncation, layer view, transform ...) with its network
    replaced by the snapshot; nothing else changes."""
    return [base.replace(pkl=s.path if isinstance(s, Snapshot) else str(s)) for s in snapshots]


def make_scrub_timeline(
    snapshots: Sequence[Snapshot | str],
    base: RenderRequest,
    *,
    seconds_per_snapshot: float,
    fps: float,
    view: str = 'image',
) -> dict:
    """A keyframe timeline (``engine.states``, format ``sg3viz-timeline``) that shows each snapshot for
    ``seconds_per_snapshot``: one keyframe per snapshot, same latent and view, the network (``pkl``) being the
    keyframed setting (it switches at each keyframe). ``loop`` is on, so the last snapshot is shown as long as the
    others and the video has exactly ``len(snapshots) * round(seconds_per_snapshot * fps)`` frames.

    Args:
        snapshots: the snapshots in showing order (usually oldest first); :class:`Snapshot` or paths.
        base: the render state every frame shares except the network.
        seconds_per_snapshot: in ``SECONDS_PER_SNAPSHOT_RANGE`` (at least one frame each).
        fps: frames per second in (0, 1000].
        view: 'image', 'fft' or 'image+fft'.

    Raises:
        ValueError: no snapshots, or a duration / fps / view out of range.
    """
    from engine.states import STATE_VERSION, TIMELINE_FORMAT, TIMELINE_VIEWS

    if not snapshots:
        raise ValueError('make_scrub_timeline(): snapshots must not be empty; the run has no network-snapshot-*.pkl')
    lo, hi = SECONDS_PER_SNAPSHOT_RANGE
    sec = seconds_per_snapshot
    if isinstance(sec, bool) or not isinstance(sec, int | float) or not lo <= sec <= hi:
        raise ValueError(f'make_scrub_timeline(): seconds_per_snapshot must be in [{lo}, {hi}], got {sec!r}')
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps <= 1000:
        raise ValueError(f'make_scrub_timeline(): fps must be in (0, 1000], got {fps!r}')
    if view not in TIMELINE_VIEWS:
        raise ValueError(f'make_scrub_timeline(): view must be one of {TIMELINE_VIEWS}, got {view!r}')
    states = scrub_states(snapshots, base)
    if len(states) == 1:
        states = states * 2  # A keyframe timeline needs two keyframes: the one snapshot twice.
    kimg = [s.kimg if isinstance(s, Snapshot) else None for s in snapshots]
    return {
        'format': TIMELINE_FORMAT,
        'version': STATE_VERSION,
        'fps': float(fps),
        'view': view,
        'loop': True,
        'scrub': {'snapshots': [s.to_dict()['pkl'] for s in states[: len(snapshots)]], 'kimg': kimg},
        'keyframes': [
            {'state': s.to_dict(), 'duration': float(sec) if len(snapshots) > 1 else float(sec) / 2} for s in states
        ],
    }
