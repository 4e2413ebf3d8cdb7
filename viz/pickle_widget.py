"""Pickle widget: network path/URL/run dir, Recent, Browse, drag-and-drop, and the safe-mode "trust" dialog."""

from __future__ import annotations

import logging
import pathlib

from imgui_bundle import imgui

from engine.sources import display_name, is_network_source, list_runs
from viz.widget import Widget

logger = logging.getLogger(__name__)

MAX_RECENT = 12
TRUST_POPUP = 'Trust this file?'


class _Unset:
    def __repr__(self) -> str:
        return '<unset>'


UNSET = _Unset()


def push_recent(recent: list[str], source: str, max_len: int = MAX_RECENT) -> list[str]:
    """``source`` first, then the previous entries without duplicates, at most ``max_len``."""
    return ([source] + [r for r in recent if r != source])[:max_len]


def status_line(net, config_fallback: str = '') -> str:
    """The pane's one-line summary of a NetInfo: config, resolution, num_ws, c_dim."""
    if net is None:
        return ''
    config = getattr(net, 'config', '') or net.arch or config_fallback
    return f'{config}  {net.img_resolution}x{net.img_resolution}  num_ws {net.num_ws}  c_dim {net.c_dim}'


class PickleWidget(Widget):
    """Network source selection and load bookkeeping.

    State: ``pkl`` (the requested source; None = bundled default), ``recent``. Runtime: ``pending`` (a load in
    flight), ``loaded_pkl`` (last source that loaded), ``load_error`` (until the next load, or until its source
    loads after all, e.g. on another device), ``failed_source`` (the source ``load_error`` is about), ``refused``
    (names a safe-mode load refused; triggers the trust dialog), ``trusted`` (sources the user trusted).

    The outcome of a load comes from ``RenderResult.source`` and ``RenderResult.load_failed``: a result for the
    pending source with a network means it loaded, ``load_failed`` means it did not.

    Args:
        viz: the app.
        browse_dir: directory listed by Browse (runs and snapshots), or None.
        trust_all: ``--trust``: load every pickle with trust=True.
    """

    TITLE = 'Network'
    KEY = 'pickle'
    STATE_KEYS = ('pkl', 'recent')

    def __init__(self, viz=None, browse_dir: str | None = None, trust_all: bool = False) -> None:
        super().__init__(viz)
        self.pkl: str | None = None
        self.recent: list[str] = []
        self.browse_dir = browse_dir
        self.trust_all = trust_all
        self.trusted: set[str | None] = set()
        self.pending: object = UNSET  # the source of a load in flight
        self._remember_pending = True  # whether the pending source goes to Recent once it loads
        self.loaded_pkl: object = UNSET
        self.load_error: str | None = None
        self.failed_source: object = UNSET
        self.refused: tuple[str | None, tuple[str, ...]] | None = None
        self._open_trust_popup = False
        self.text = ''
        self.field_width = 0.0  # drawn width of the path field (tests)

    def set_state(self, state) -> None:
        pkl = state.get('pkl', self.pkl)
        super().set_state({k: v for k, v in state.items() if k != 'pkl'})
        if pkl != self.pkl:
            self.load(pkl)

    # ---- actions ----------------------------------------------------------------------------------------------
    def load(self, source: str | None, *, trust: bool = False, remember: bool = True) -> None:
        """Requests ``source`` (None = bundled default); a newer load supersedes one still in flight.

        ``remember=False`` keeps it out of Recent (the Checkpoints pane scrubbing through a run's snapshots)."""
        source = source.strip() if isinstance(source, str) else None
        source = source or None
        if trust:
            self.trusted.add(source)
        self.pkl = source
        self.pending = source
        self._remember_pending = bool(remember)
        self.dismiss_error()
        self.text = source or ''
        logger.info('loading %s', display_name(source))

    def confirm_trust(self) -> None:
        """The user trusted the refused file: load it again with trust=True."""
        if self.refused is not None:
            self.load(self.refused[0], trust=True)

    def dismiss_error(self) -> None:
        self.load_error = None
        self.failed_source = UNSET
        self.refused = None

    def handle_drop(self, paths: list[str]) -> bool:
        """Loads the first dropped network source. Returns False (and sets an error) when there is none."""
        for p in paths:
            if is_network_source(p):
                self.load(p)
                return True
        if paths:
            self.load_error = (
                f'Drop a network pickle (.pkl), a URL or a training-run directory; got {pathlib.Path(paths[0]).name!r}'
            )
            logger.error('%s', self.load_error)
        return False

    def is_loading(self) -> bool:
        return self.pending is not UNSET

    def on_result(self, result) -> None:
        loaded = result.net is not None and not result.load_failed
        if loaded and self.load_error is not None and result.source == self.failed_source:
            self.dismiss_error()  # What the error reported has succeeded after all (e.g. on another device).
        if self.pending is UNSET or result.source != self.pending:
            return
        source = self.pending
        if result.load_failed:
            self.pending = UNSET
            self.load_error = f'Could not load {display_name(source)}:\n{result.error}'
            self.failed_source = source
            if result.refused_names:
                self.refused = (source, tuple(result.refused_names))
                self._open_trust_popup = True
            fallback = None if self.loaded_pkl is UNSET else self.loaded_pkl
            if fallback != source:
                self.pkl = fallback  # the previous network stays usable
                self.pending = fallback
                self.text = source or ''
            return
        if loaded:
            self.pending = UNSET
            self.loaded_pkl = source
            if source is not None and self._remember_pending:
                self.recent = push_recent(self.recent, source)

    def update_request(self, args, dt) -> None:
        args['pkl'] = self.pkl
        args['trust'] = bool(self.trust_all or self.pkl in self.trusted)

    # ---- drawing ----------------------------------------------------------------------------------------------
    def _draw_recent_popup(self) -> None:
        if imgui.begin_popup('recent_popup'):
            if imgui.menu_item_simple('Bundled default network'):
                self.load(None)
            for r in self.recent:
                if imgui.menu_item_simple(r):
                    self.load(r)
            imgui.end_popup()

    def _remote(self):
        """The renderer when it renders on a server (``--connect``), else None."""
        r = getattr(self.viz, 'renderer', None) if self.viz is not None else None
        return r if hasattr(r, 'file_list') else None

    def browse_runs(self) -> tuple[str | None, list]:
        """(listed directory, [(run dir, [snapshots])]) for Browse: the server's files when rendering remotely."""
        remote = self._remote()
        if remote is None:
            return self.browse_dir, list_runs(self.browse_dir)
        root, runs, _err = remote.file_list()
        return (root or 'the server'), runs

    def trust_refused_by_server(self) -> bool:
        """True when rendering on a server that was not started with --allow-trust."""
        remote = self._remote()
        return remote is not None and not remote.allows_trust

    def _draw_browse_popup(self) -> None:
        if imgui.begin_popup('browse_popup'):
            where, runs = self.browse_runs()
            if not runs:
                imgui.text_disabled(f'No .pkl files under {where}')
            for run, snaps in runs:
                if imgui.begin_menu(pathlib.Path(run).name or run):
                    if imgui.menu_item_simple('Newest snapshot') and snaps:
                        self.load(snaps[0])
                    for s in snaps:
                        if imgui.menu_item_simple(pathlib.Path(s).name):
                            self.load(s)
                    imgui.end_menu()
            imgui.end_popup()

    def _draw_trust_popup(self) -> None:
        if self._open_trust_popup:
            imgui.open_popup(TRUST_POPUP)
            self._open_trust_popup = False
        opened, _ = imgui.begin_popup_modal(TRUST_POPUP, None, imgui.WindowFlags_.always_auto_resize)
        if opened:
            if self.refused is None:  # superseded by another load
                imgui.close_current_popup()
                imgui.end_popup()
                return
            source, names = self.refused
            imgui.text(f'Safe mode refused {display_name(source)}.')
            imgui.text('It references classes/functions outside the safe list:')
            for n in names[:12]:
                imgui.bullet_text(n)
            if len(names) > 12:
                imgui.text_disabled(f'... and {len(names) - 12} more')
            imgui.text('Loading it with trust runs code embedded in the file. Only do this for files you trust.')
            refused = self.trust_refused_by_server()
            if refused:
                imgui.text_colored(
                    imgui.ImVec4(1.0, 0.45, 0.4, 1.0),
                    'The render server refuses trust for remote clients (start it with --allow-trust).',
                )
            imgui.begin_disabled(refused)
            if imgui.button('Trust and load'):
                self.confirm_trust()
                imgui.close_current_popup()
            imgui.end_disabled()
            imgui.same_line()
            if imgui.button('Cancel'):
                imgui.close_current_popup()
            imgui.end_popup()

    def draw(self) -> None:
        fs = self.font_size
        imgui.set_next_item_width(-fs * 0.5 - imgui.calc_text_size('Load').x - imgui.get_style().frame_padding.x * 2)
        entered, self.text = imgui.input_text_with_hint(
            '##pkl',
            'path, URL or run dir (empty: bundled default)',
            self.text,
            imgui.InputTextFlags_.enter_returns_true,
        )
        self.field_width = imgui.get_item_rect_size().x
        imgui.same_line()
        if imgui.button('Load') or entered:
            self.load(self.text)
        if imgui.button('Recent'):
            imgui.open_popup('recent_popup')
        self._draw_recent_popup()
        imgui.same_line()
        remote = self._remote()
        imgui.begin_disabled(self.browse_dir is None and remote is None)
        if imgui.button('Browse'):
            if remote is not None:
                remote.request_file_list()
            imgui.open_popup('browse_popup')
        imgui.end_disabled()
        if (
            self.browse_dir is None
            and remote is None
            and imgui.is_item_hovered(imgui.HoveredFlags_.allow_when_disabled)
        ):
            imgui.set_tooltip('Start with --browse-dir DIR to list training runs')
        self._draw_browse_popup()
        imgui.same_line()
        if imgui.button('Default'):
            self.load(None)
        if self.refused is not None:
            imgui.same_line()
            if imgui.button('Trust...'):
                self._open_trust_popup = True
        self._draw_trust_popup()
        # One status line, always present (errors are shown over the image, so the controls below never move).
        text = self.status_text()
        if self.load_error and not self.is_loading():
            imgui.text_colored(imgui.ImVec4(1.0, 0.45, 0.4, 1.0), text)
        else:
            imgui.text_disabled(text)

    def status_text(self) -> str:
        """The pane's status line: the load in flight, a failed load (and what is shown instead), or the network."""
        if self.is_loading():
            return f'Loading {display_name(self.pending)} ...'
        if self.load_error:
            showing = 'nothing' if self.net is None else display_name(self.net.pkl or None)
            return f'Load failed; showing {showing}'
        return status_line(self.net)
