"""Saved sessions: the whole widget state as JSON (save, load), a user-visible bonus over the reference GUI."""

from __future__ import annotations

import json
import logging
import pathlib

from imgui_bundle import imgui

from engine.states import CAPTURE_FORMAT, MP4_SUFFIXES, TIMELINE_FORMAT, read_state_doc, widgets_from_doc, write_json
from viz.widget import Widget

logger = logging.getLogger(__name__)

SESSION_FORMAT = 'sg3viz-session'
SESSION_VERSION = 1


def save_session(path: str | pathlib.Path, widgets: dict[str, dict], request: dict | None = None) -> pathlib.Path:
    """Writes ``{'format', 'version', 'widgets': {key: state}, 'request'}`` to ``path`` atomically (parents created).

    ``request`` (``RenderRequest.to_dict()`` of the displayed image) lets ``gen_images.py --session`` render the
    session without a window. Returns the path."""
    doc = {'format': SESSION_FORMAT, 'version': SESSION_VERSION, 'widgets': widgets, 'request': request}
    return write_json(path, doc)


def load_session(path: str | pathlib.Path) -> dict[str, dict]:
    """Reads a session, a capture (its sidecar or PNG) or a recording (its timeline JSON or the .mp4 carrying it) and
    returns ``{widget key: state}`` (a recording: its first frame's, animations off; ``engine.states.widgets_from_doc``).

    Raises:
        ValueError: the file is missing, not JSON, a PNG/mp4 without state, a timeline without GUI state, or not a
            session / capture / recording.
    """
    p = pathlib.Path(path)
    if p.suffix.lower() in ('.png', *MP4_SUFFIXES):
        return widgets_from_doc(read_state_doc(p), p.name)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError as e:
        raise ValueError(f'load_session(): path must be an existing file, got {str(p)!r}') from e
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f'load_session(): {str(p)!r} is not a readable JSON session ({e})') from e
    if not isinstance(doc, dict) or doc.get('format') not in (SESSION_FORMAT, CAPTURE_FORMAT, TIMELINE_FORMAT):
        raise ValueError(
            f'load_session(): {str(p)!r} is not an sg3viz session, capture sidecar or recording; save one with the '
            f'Session widget'
        )
    if doc.get('version', 1) > SESSION_VERSION:
        raise ValueError(
            f'load_session(): version must be <= {SESSION_VERSION}, got {doc.get("version")}; '
            f'the file comes from a newer release'
        )
    return widgets_from_doc(doc, p.name)


class SessionWidget(Widget):
    """Session file path with Save / Load buttons. State: ``session_path``."""

    TITLE = 'Session'
    KEY = 'session'
    STATE_KEYS = ()
    DEFAULT_OPEN = False

    def __init__(self, viz=None, session_path: str = 'session.json') -> None:
        super().__init__(viz)
        self.session_path = session_path
        self.status = ''
        self.field_width = 0.0  # drawn width of the path field (tests)

    def save(self, path: str | None = None) -> bool:
        path = path or self.session_path
        try:
            req = self.viz.view.image_request
            save_session(path, self.viz.get_session()['widgets'], req.to_dict() if req is not None else None)
        except OSError as e:
            self.status = f'Save failed: {e}'
            logger.error('%s', self.status)
            return False
        self.status = f'Saved {pathlib.Path(path).name}'
        return True

    def load(self, path: str | None = None) -> bool:
        path = path or self.session_path
        try:
            self.viz.set_session({'widgets': load_session(path)})
        except ValueError as e:
            self.status = str(e)
            logger.error('%s', e)
            return False
        self.status = f'Loaded {pathlib.Path(path).name}'
        return True

    def draw(self) -> None:
        fs = self.font_size
        imgui.set_next_item_width(-imgui.calc_text_size('File').x - fs * 0.6)  # the pane's width: paths are long
        _, self.session_path = imgui.input_text('File##session', self.session_path)
        self.field_width = imgui.get_item_rect_size().x
        if imgui.button('Save session') and self.viz is not None:
            self.save()
        imgui.same_line()
        if imgui.button('Load session') and self.viz is not None:
            self.load()
        if self.status:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_disabled(self.status)
            imgui.pop_text_wrap_pos()
