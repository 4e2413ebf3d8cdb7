"""Checkpoints widget: scrub through a training run's snapshots by kimg and watch the same latent evolve over training.

The run is the one the loaded network belongs to (a snapshot's folder, or a run directory given as the source), or
one picked from the runs under ``--browse-dir`` (on a render server: the server's runs). A slider over its
``network-snapshot-*.pkl`` files (oldest first; the label shows the snapshot number and kimg, the file name below),
Prev / Next, Play (advances once the shown snapshot has been on screen for the chosen time), the snapshot's metrics
from the run's ``metric-*.jsonl``, and the preload status: the neighbours of the position are loaded ahead by the
render process's ``'preload_networks'`` job (``engine.checkpoints.preload_job``), cancelled and restarted as the
position moves. Moving the slider only changes the Network pane's source (``PickleWidget.load``, kept out of
Recent): seeds, truncation, layer view and every other setting stay.

Save timeline writes the scrub as a keyframe timeline (``engine.checkpoints.make_scrub_timeline``) that
``gen_video.py --timeline`` renders; Render video hands the same states to the Record pane. This module never
imports torch.
"""

from __future__ import annotations

import logging
import math
import os
import pathlib
import time
from typing import Any

from imgui_bundle import imgui

from engine.checkpoints import (
    SECONDS_PER_SNAPSHOT_RANGE,
    ScrubRun,
    format_metric,
    load_run,
    make_scrub_timeline,
    preload_order,
    run_of,
    run_signature,
    scrub_runs,
    snapshots_from_paths,
)
from viz.widget import Widget

logger = logging.getLogger(__name__)

FPS_RANGE = (1, 120)
RESCAN_SEC = 2.0  # How often the run's folder is looked at again (new snapshots, new metric lines).
PRELOAD_COUNT = 2  # Neighbours loaded ahead (the render process caches 3 networks: the one shown + 2).
VISIBLE_SEC = 1.0  # The pane counts as open this long after it was last drawn (preloading is for an open pane).
FOLLOW_LOADED = ''  # run_dir value: the run of the loaded network.


def _num(value: Any) -> float | None:
    """A finite float from a number or numeric string, else None."""
    if isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return v if math.isfinite(v) else None


class CheckpointWidget(Widget):
    """Training-run snapshot slider, Prev/Next/Play, metrics, preload status, scrub timeline and video.

    State: ``run_dir`` ('' = the run of the loaded network), ``seconds_per_snapshot`` (Play and video), ``fps``
    (video), ``anim`` (Play), ``loop`` (Play starts again at the end), ``preload`` (load neighbours ahead),
    ``timeline_path`` ('' = ``<capture dir>/scrub-keyframes.json``).
    Runtime: ``run`` (the :class:`engine.checkpoints.ScrubRun` shown), ``preload_state`` ({source: 'loading' |
    'ready' | 'failed'}), ``status`` (last action's outcome).
    """

    TITLE = 'Checkpoints'
    KEY = 'checkpoints'
    STATE_KEYS = ('run_dir', 'seconds_per_snapshot', 'fps', 'anim', 'loop', 'preload', 'timeline_path')
    DEFAULT_OPEN = False

    def __init__(self, viz=None) -> None:
        super().__init__(viz)
        self.run_dir = FOLLOW_LOADED
        self.seconds_per_snapshot = 1.0
        self.fps = 8
        self.anim = False
        self.loop = True
        self.preload = True
        self.timeline_path = ''
        self._last_seconds = 1.0
        self.run: ScrubRun | None = None
        self.status = ''
        self.preload_job_id: int | None = None
        self.preload_state: dict[str, str] = {}
        self.preload_errors: dict[str, str] = {}
        self.preload_note = ''
        self.rects: dict[str, tuple[float, float, float, float]] = {}  # drawn controls (x, y, w, h) for tests
        self._preload_want: tuple[str, ...] = ()
        self._run_key: str | None = None
        self._run_sig: tuple | None = None
        self._next_scan = 0.0
        self._direction = 1
        self._play_sec = 0.0
        self._visible_until = 0.0
        self._runs_cache: tuple[float, list[tuple[str, int]]] = (0.0, [])
        self._run_of_cache: tuple[str | None, float, str | None] = (None, 0.0, None)
        self._next_remote_ask = 0.0

    # ---- state ------------------------------------------------------------------------------------------------
    def validate(self) -> None:
        if self.run_dir is None or not isinstance(self.run_dir, str):
            self.run_dir = FOLLOW_LOADED
        self.set_seconds(self.seconds_per_snapshot)
        self.set_fps(self.fps)
        for k in ('anim', 'loop', 'preload'):
            setattr(self, k, bool(getattr(self, k)))
        if not isinstance(self.timeline_path, str):
            self.timeline_path = ''

    def set_seconds(self, value: Any) -> None:
        """Seconds per snapshot, clamped into ``SECONDS_PER_SNAPSHOT_RANGE`` with a note (non-numbers: kept)."""
        lo, hi = SECONDS_PER_SNAPSHOT_RANGE
        v = _num(value)
        if v is None:
            v = self._last_seconds
            self.notify(f'Checkpoints: seconds per snapshot {value!r} is not a number; kept {v:g}')
        if not lo <= v <= hi:
            self.notify(f'Checkpoints: seconds per snapshot {v:g} is outside {lo:g}..{hi:g}; clamped')
            v = min(max(v, lo), hi)
        self.seconds_per_snapshot = self._last_seconds = float(v)

    def set_fps(self, value: Any) -> None:
        """Video frames per second, a whole number clamped into ``FPS_RANGE`` with a note."""
        lo, hi = FPS_RANGE
        v = _num(value)
        if v is None:
            self.notify(f'Checkpoints: fps {value!r} is not a number; using 8')
            v = 8
        if not lo <= v <= hi or v != int(v):
            self.notify(f'Checkpoints: fps {v:g} must be a whole number in {lo}..{hi}; clamped')
        self.fps = int(min(max(round(v), lo), hi))

    # ---- the run ----------------------------------------------------------------------------------------------
    def _remote(self):
        r = getattr(self.viz, 'renderer', None) if self.viz is not None else None
        return r if hasattr(r, 'file_list') else None

    def _pickle(self):
        return getattr(self.viz, 'pickle', None) if self.viz is not None else None

    def requested_source(self) -> str | None:
        """The Network pane's source (the network requested now)."""
        p = self._pickle()
        return p.pkl if p is not None else None

    def active_run_dir(self) -> str | None:
        """The run being scrubbed: the chosen one, else the loaded network's run (None when it is in none)."""
        if self.run_dir:
            return self.run_dir
        src = self.requested_source()
        if self._remote() is not None:
            return _remote_run_of(src, self._remote_runs()) if src else None
        cached_src, expiry, cached = self._run_of_cache
        if src == cached_src and time.monotonic() < expiry:
            return cached  # run_of() looks at the file system: at most every RESCAN_SEC per source, not every frame
        run = run_of(src) if src else None
        found = str(run) if run is not None else None
        self._run_of_cache = (src, time.monotonic() + RESCAN_SEC, found)
        return found

    def _remote_runs(self) -> list[tuple[str, list[str]]]:
        remote = self._remote()
        if remote is None:
            return []
        _root, runs, _err = remote.file_list()
        return [(str(d), [str(p) for p in pkls]) for d, pkls in runs]

    def refresh(self, force: bool = False) -> ScrubRun | None:
        """Lists the active run again when it changed, or when its folder changed (looked at every ``RESCAN_SEC``;
        on a render server: its file list is asked for every ``RESCAN_SEC``, the answer used when it comes)."""
        now = time.monotonic()
        remote = self._remote()
        if remote is not None and (force or now >= self._next_remote_ask):
            remote.request_file_list()
            self._next_remote_ask = now + RESCAN_SEC
        key = self.active_run_dir()
        if key is None:
            self.run, self._run_key = None, None
            return None
        if not force and key == self._run_key and now < self._next_scan:
            return self.run
        self._next_scan = now + RESCAN_SEC
        if remote is not None:
            pkls = next((p for d, p in self._remote_runs() if _same_path(d, key)), [])
            self.run = ScrubRun(key, tuple(snapshots_from_paths(pkls)))  # No metrics: the server sends no files.
        else:
            sig = run_signature(key)
            if force or key != self._run_key or sig != self._run_sig:
                self.run = load_run(key)
                self._run_sig = sig
        self._run_key = key
        return self.run

    def position(self) -> int | None:
        """Index (oldest first) of the requested network in the run, or None when it is not one of its snapshots."""
        return self.run.index_of(self.requested_source()) if self.run is not None else None

    def displayed_position(self) -> int | None:
        """Index of the network on screen in the run (by the file it resolved to), or None."""
        net = self.net
        if net is None or self.run is None:
            return None
        return self.run.index_of(net.resolved_path or net.pkl or None)

    # ---- actions ----------------------------------------------------------------------------------------------
    def go_to(self, index: Any) -> bool:
        """Shows snapshot ``index`` (0 = oldest): the Network pane loads it, nothing else changes. Out-of-range and
        typed values are clamped with a note. Returns whether a load was requested."""
        run = self.refresh()
        if run is None or not run.snapshots:
            self.status = 'No run to scrub: load a snapshot of a training run or pick a run'
            return False
        n = len(run.snapshots)
        v = _num(index)
        if v is None:
            self.notify(f'Checkpoints: snapshot {index!r} is not a number; kept the current one')
            return False
        i = int(min(max(round(v), 0), n - 1))
        if not 0 <= v <= n - 1:
            self.notify(f'Checkpoints: snapshot #{v + 1:g} is outside #1..#{n}; showing #{i + 1}')
        elif i != v:
            self.notify(f'Checkpoints: snapshot #{v + 1:g} is not a whole number; showing #{i + 1}')
        cur = self.position()
        if cur is not None and i == cur:
            return False
        self._direction = 1 if cur is None or i > cur else -1
        self._play_sec = 0.0
        snap = run.snapshots[i]
        pickle = self._pickle()
        if pickle is None:
            return False
        pickle.load(snap.path, remember=False)
        self.status = f'kimg {snap.kimg_text}: {snap.name}'
        return True

    def step(self, delta: int) -> bool:
        """Prev (-1) / Next (+1); from outside the run, Next goes to the oldest and Prev to the newest."""
        if self.refresh() is None or not self.run or not self.run.snapshots:
            return self.go_to(0)
        cur = self.position()
        if cur is None:
            return self.go_to(0 if delta > 0 else len(self.run.snapshots) - 1)
        return self.go_to(cur + int(delta))

    def play(self, on: bool = True) -> None:
        self.anim = bool(on)
        self._play_sec = 0.0

    def base_request(self):
        """The render state the scrub keeps (the image on screen, else the last request), or None."""
        req = self.view.image_request or self.view.request
        if req is None and self.viz is not None:
            req = getattr(self.viz, '_last_request', None)
        return req.replace(trust=False, stamp=0) if req is not None else None

    def timeline_doc(self) -> dict:
        """The scrub as a keyframe timeline document (every snapshot of the run, oldest first).

        Raises:
            ValueError: no run, no snapshots, or nothing rendered yet.
        """
        run = self.refresh()
        if run is None or not run.snapshots:
            raise ValueError('no training run with snapshots to scrub')
        base = self.base_request()
        if base is None:
            raise ValueError('nothing rendered yet; wait for the first image')
        return make_scrub_timeline(
            run.snapshots, base, seconds_per_snapshot=self.seconds_per_snapshot, fps=self.fps, view='image'
        )

    def default_timeline_path(self) -> str:
        capture = getattr(self.viz, 'capture', None) if self.viz is not None else None
        folder = getattr(capture, 'capture_dir', 'captures') if capture is not None else 'captures'
        return str(pathlib.Path(folder) / 'scrub-keyframes.json')

    def save_timeline(self, path: str | os.PathLike | None = None) -> pathlib.Path | None:
        """Writes the scrub timeline JSON (atomically); the outcome goes to ``status``."""
        from engine.states import write_json

        target = pathlib.Path(os.fspath(path) if path else (self.timeline_path or self.default_timeline_path()))
        try:
            doc = self.timeline_doc()
            write_json(target.expanduser(), doc)
        except (ValueError, OSError) as e:
            self.status = f'Save timeline failed: {e}'
            self.notify(self.status)
            return None
        self.status = f'Saved {len(doc["keyframes"])} keyframes to {target} (gen_video.py --timeline {target})'
        logger.info('%s', self.status)
        return target

    def render_video(self) -> bool:
        """Renders the scrub to a video through the Record pane (``viz.record.render_states``)."""
        from engine.states import expand_keyframes, request_from_dict

        try:
            doc = self.timeline_doc()
        except ValueError as e:
            self.status = f'Render video: {e}'
            return False
        kfs = [request_from_dict(k['state'], 'scrub') for k in doc['keyframes']]
        states = expand_keyframes(kfs, [k['duration'] for k in doc['keyframes']], doc['fps'], loop=True)
        record = getattr(self.viz, 'record', None) if self.viz is not None else None
        render = getattr(record, 'render_states', None)
        if render is None:
            self.status = 'Render video needs the Record pane; save the timeline and run gen_video.py --timeline'
            return False
        name = f'scrub-{pathlib.Path(self.run.run_dir).name}' if self.run is not None else 'scrub'
        widgets = None
        if hasattr(self.viz, 'get_session'):  # The first frame's GUI state: dropping the video reopens the scrub.
            widgets = self.viz.get_session()['widgets']
            widgets['pickle'] = dict(widgets.get('pickle', {}), pkl=states[0].pkl)
        job = render(states, fps=float(self.fps), view=None, name=name, widgets=widgets)
        if job is None:
            self.status = f'Render video: {getattr(record, "status", "") or "the Record pane could not start"}'
            return False
        if hasattr(self.viz, 'set_section_open'):
            self.viz.set_section_open(getattr(record, 'KEY', 'record'), True)  # Its progress and Cancel.
        self.status = f'Rendering {len(states)} frames ({len(kfs)} snapshots) in the Record pane'
        return True

    # ---- per frame --------------------------------------------------------------------------------------------
    def update_request(self, args: dict[str, Any], dt: float) -> None:
        """Pure as far as the request goes (the Network pane writes ``pkl``): advances Play and the preload."""
        if self.viz is None:
            return
        run = self.refresh()
        self._advance_play(run, dt)
        self._update_preload(run)

    def _advance_play(self, run: ScrubRun | None, dt: float) -> None:
        if not self.anim:
            return
        if run is None or len(run.snapshots) < 2:
            self.anim = False
            self.status = 'Play needs a run with two or more snapshots'
            return
        pickle = self._pickle()
        if pickle is not None and pickle.load_error:
            self.anim = False
            self.status = 'Play stopped: a snapshot failed to load'
            return
        cur = self.position()
        if cur is None:
            self.go_to(0)
            return
        if (pickle is not None and pickle.is_loading()) or self.displayed_position() != cur:
            return  # Wait until the snapshot is on screen: every one is shown for the full time, however slow.
        self._play_sec += max(float(dt), 0.0)
        if self._play_sec < self.seconds_per_snapshot:
            return
        if cur + 1 < len(run.snapshots):
            self.go_to(cur + 1)
        elif self.loop:
            self.go_to(0)
        else:
            self.anim = False
            self.status = 'Play reached the newest snapshot'

    def _preload_wanted(self, run: ScrubRun | None) -> tuple[str, ...]:
        active = self.anim or time.monotonic() < self._visible_until
        if not (self.preload and active and run is not None and run.snapshots):
            return ()
        cur = self.position()
        if cur is None:
            return ()
        direction = 1 if self.anim else self._direction
        return tuple(run.snapshots[i].path for i in preload_order(len(run.snapshots), cur, PRELOAD_COUNT, direction))

    def _update_preload(self, run: ScrubRun | None) -> None:
        if self._remote() is not None:
            self.preload_note = 'not available when rendering on a server (each snapshot loads when shown)'
            return
        want = self._preload_wanted(run)
        if want == self._preload_want:
            return
        self._preload_want = want
        if self.preload_job_id is not None:
            self.viz.cancel_job(self.preload_job_id)
            self.preload_job_id = None
        self.preload_state = {s: st for s, st in self.preload_state.items() if s in want and st == 'ready'}
        self.preload_errors = {}
        if not want:
            return
        pickle = self._pickle()
        trust = bool(getattr(pickle, 'trust_all', False))
        job_id = self.viz.start_job('preload_networks', {'sources': list(want), 'trust': trust})
        if job_id is None:
            self.preload_note = 'not available with this renderer'
            return
        self.preload_job_id = job_id
        self.preload_note = ''
        for s in want:
            self.preload_state.setdefault(s, 'loading')

    def on_job_update(self, update) -> None:
        if update.job_id != self.preload_job_id:
            return
        data = update.result if update.state == 'done' else update.data
        if data and isinstance(data.get('state'), dict):
            self.preload_state = dict(data['state'])
        if update.state == 'done' and update.result:
            self.preload_errors = dict(update.result.get('errors') or {})
            for source, message in self.preload_errors.items():
                logger.warning('Checkpoints: loading %s ahead failed: %s', source, message)
        if update.state == 'error':
            self.preload_note = f'failed: {update.error}'
        if update.is_final:
            self.preload_job_id = None

    def preload_settled(self) -> bool:
        """Whether the neighbours wanted now are loaded ahead (or failed) and no preload job runs."""
        if self.preload_job_id is not None or not self._preload_want:
            return False
        return all(self.preload_state.get(s) in ('ready', 'failed') for s in self._preload_want)

    def preload_text(self) -> str:
        """One line: what is loaded ahead ('kimg 0.500 ready, kimg 1 loading'), or why nothing is."""
        if self.preload_note:
            return f'Preload: {self.preload_note}'
        if not self.preload:
            return 'Preload: off'
        if not self._preload_want:
            return 'Preload: idle'
        names = {s.path: s.kimg_text for s in (self.run.snapshots if self.run else ())}
        parts = [f'kimg {names.get(s, pathlib.PurePath(s).name)} {self.preload_state.get(s, "loading")}'
                 for s in self._preload_want]  # fmt: skip
        return 'Preload: ' + ', '.join(parts)

    def metrics_lines(self) -> list[str]:
        """The metrics of the requested snapshot ('fid50k_full 12.35'), or a line saying why there are none."""
        run, cur = self.run, self.position()
        if run is None or cur is None:
            return []
        snap = run.snapshots[cur]
        if snap.metrics:
            return [f'{k} {format_metric(v)}' for k, v in sorted(snap.metrics.items())]
        if self._remote() is not None:
            return ['Metrics: not available from the render server']
        if run.metric_names:
            return [f'No metrics for this snapshot ({", ".join(run.metric_names)} recorded for others)']
        return ['No metric-*.jsonl in this run (train.py --metrics ...)']

    def dump(self) -> dict:
        """The pane's state for tests and bug reports."""
        run = self.run
        return {
            'run_dir': run.run_dir if run is not None else None,
            'snapshots': [s.path for s in run.snapshots] if run is not None else [],
            'kimg': [s.kimg for s in run.snapshots] if run is not None else [],
            'position': self.position(),
            'displayed_position': self.displayed_position(),
            'metrics': self.metrics_lines(),
            'notes': list(run.notes) if run is not None else [],
            'preload_state': dict(self.preload_state),
            'preload_errors': dict(self.preload_errors),
            'preload_want': list(self._preload_want),
            'preload_text': self.preload_text(),
            'preload_job_id': self.preload_job_id,
            'status': self.status,
            'rects': {k: list(v) for k, v in self.rects.items()},
        }

    # ---- drawing ----------------------------------------------------------------------------------------------
    def _rect(self, name: str) -> None:
        p, s = imgui.get_item_rect_min(), imgui.get_item_rect_size()
        self.rects[name] = (float(p.x), float(p.y), float(s.x), float(s.y))

    def _run_label(self, path: str | None) -> str:
        return pathlib.Path(path).name or path if path else ''

    def _draw_run_combo(self) -> None:
        fs = self.font_size
        current = self.run_dir or FOLLOW_LOADED
        label = self._run_label(current) if current else 'Run of the loaded network'
        imgui.set_next_item_width(fs * 18)
        if imgui.begin_combo('Run', label):
            if imgui.selectable('Run of the loaded network', not current)[0]:
                self.run_dir = FOLLOW_LOADED
                self.refresh(force=True)
            for folder, num in self._list_runs():
                if imgui.selectable(f'{self._run_label(folder)}  ({num} snapshots)##{folder}', current == folder)[0]:
                    self.run_dir = folder
                    self.refresh(force=True)
            imgui.end_combo()

    def _list_runs(self) -> list[tuple[str, int]]:
        """Runs offered by the Run menu (looked up at most every ``RESCAN_SEC``)."""
        t, runs = self._runs_cache
        if time.monotonic() - t < RESCAN_SEC:
            return runs
        remote = self._remote()
        if remote is not None:
            remote.request_file_list()
            runs = [(d, len(snapshots_from_paths(p))) for d, p in self._remote_runs()]
            runs = [(d, n) for d, n in runs if n]
        else:
            pickle = self._pickle()
            runs = scrub_runs(getattr(pickle, 'browse_dir', None))
        self._runs_cache = (time.monotonic(), runs)
        return runs

    def _draw_slider(self, run: ScrubRun) -> None:
        fs = self.font_size
        n = len(run.snapshots)
        cur = self.position()
        shown = cur if cur is not None else self.displayed_position()
        value = (shown if shown is not None else n - 1) + 1
        snap = run.snapshots[value - 1]
        imgui.set_next_item_width(fs * 18)
        fmt = f'#%d  kimg {snap.kimg_text}'
        changed, v = imgui.slider_int('##snapshot', value, 1, n, fmt)
        self._rect('slider')
        if changed:
            self.go_to(v - 1)
        imgui.same_line()
        imgui.text(f'of {n}')
        if imgui.button('|<'):
            self.go_to(0)
        imgui.same_line()
        if imgui.button('< Prev'):
            self.step(-1)
        self._rect('prev')
        imgui.same_line()
        if imgui.button('Next >'):
            self.step(+1)
        self._rect('next')
        imgui.same_line()
        if imgui.button('>|'):
            self.go_to(n - 1)
        imgui.same_line()
        if imgui.button('Pause' if self.anim else 'Play'):
            self.play(not self.anim)
        self._rect('play')
        imgui.same_line()
        self.loop = imgui.checkbox('Loop', self.loop)[1]
        where = run.snapshots[cur].name if cur is not None else f'showing a network outside this run; #{n} is newest'
        imgui.text_disabled(where)

    def draw(self) -> None:
        self._visible_until = time.monotonic() + VISIBLE_SEC
        self._draw_run_combo()
        run = self.refresh()
        if run is None:
            imgui.text_disabled('Load a snapshot of a training run (or a run')
            imgui.text_disabled('directory), or pick a run above, to scrub it.')
        elif not run.snapshots:
            imgui.text_disabled(f'No network-snapshot-*.pkl in {self._run_label(run.run_dir)}')
        else:
            self._draw_slider(run)
            for line in self.metrics_lines():
                imgui.text(line)
            imgui.text_disabled(self.preload_text())
            if self.preload_errors and imgui.is_item_hovered():
                imgui.set_tooltip('\n'.join(self.preload_errors.values()))  # Why a snapshot could not be loaded ahead.
            self._draw_output()
            for note in run.notes[:3]:
                imgui.text_disabled(note)
        if self.status:
            imgui.text_wrapped(self.status)

    def _draw_output(self) -> None:
        fs = self.font_size
        imgui.set_next_item_width(fs * 6.5)
        changed, v = imgui.input_float('s/snapshot', self.seconds_per_snapshot, 0.1, 1.0, '%.2f')
        if changed:
            self.set_seconds(v)
        imgui.same_line()
        imgui.set_next_item_width(fs * 5)
        changed, v = imgui.input_int('fps', int(self.fps), 1, 10)
        if changed:
            self.set_fps(v)
        imgui.same_line()
        self.preload = imgui.checkbox('Preload', self.preload)[1]
        imgui.set_next_item_width(fs * 18)
        _, self.timeline_path = imgui.input_text_with_hint(
            '##scrub_json', self.default_timeline_path(), self.timeline_path
        )
        if imgui.button('Save timeline'):
            self.save_timeline()
        imgui.same_line()
        if imgui.button('Render video'):
            self.render_video()


def _same_path(a: str, b: str) -> bool:
    return os.path.normpath(str(a)) == os.path.normpath(str(b))


def _remote_run_of(source: str, runs: list[tuple[str, list[str]]]) -> str | None:
    """The server run (from its file list) that holds ``source`` or is ``source``."""
    for d, pkls in runs:
        if _same_path(d, source) or any(_same_path(p, source) for p in pkls):
            return d
    return None
