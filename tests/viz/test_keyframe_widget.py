"""Keyframes widget logic without a window: add / reorder / delete, typed values clamped with notes, the preview
override, playback timing, session state and Render video through the Record pane's method."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine.protocol import RenderRequest
from engine.states import KeyframeTimeline
from viz.keyframe_widget import KeyframeWidget, make_thumbnail, thumb_from_b64, thumb_to_b64


def _widget_with(*seeds: int) -> KeyframeWidget:
    w = KeyframeWidget(None)
    for s in seeds:
        w.override(RenderRequest(w0_seeds=((s, 1.0),), trunc_psi=0.5 + s / 100))
        assert w.add_keyframe()
    return w


def test_add_reorder_delete_and_insert_after_selected():
    w = KeyframeWidget(None)
    assert not w.add_keyframe() and 'Nothing rendered' in w.status
    w = _widget_with(1, 2, 3)
    assert [k.request.w0_seeds[0][0] for k in w.keyframes] == [1, 2, 3] and w.selected == 2
    w.move(0, +1)
    assert [k.request.w0_seeds[0][0] for k in w.keyframes] == [2, 1, 3] and w.selected == 1
    w.move(0, -1)  # nothing left of the first
    w.override(RenderRequest(w0_seeds=((9, 1.0),)))
    w.add_keyframe()  # after the selected one
    assert [k.request.w0_seeds[0][0] for k in w.keyframes] == [2, 1, 9, 3] and w.selected == 2
    w.delete(0)
    w.delete(99)
    assert [k.request.w0_seeds[0][0] for k in w.keyframes] == [1, 9, 3]


def test_typed_values_are_clamped_with_notes():
    w = _widget_with(1, 2)
    for typed, expected in ((-5, 0.05), (1e9, 3600.0), (math.nan, 2.0), ('abc', 2.0), (math.inf, 3600.0)):
        w.last_note = None
        w.set_duration(0, typed)
        assert w.keyframes[0].duration == expected and w.last_note is not None, typed
    w.set_state({'fps': 10_000, 'time_sec': -3, 'selected': 77})
    assert w.fps == 120 and w.time_sec == 0.0 and w.selected == 1 and 'fps' in w.last_note
    w.set_state({'fps': 'x'})
    assert w.fps == 30
    w.scrub(1e12)
    assert w.preview and w.time_sec == pytest.approx((w.timeline().num_frames - 1) / w.fps) and 'clamped' in w.last_note


def test_override_is_the_timeline_frame_and_playback_wraps_or_stops():
    w = _widget_with(1, 2, 3)
    w.set_interp(0, 'slerp_z')
    w.set_duration(1, 0.5)
    w.set_state({'fps': 10, 'loop': False})
    tl = w.timeline()
    assert tl == KeyframeTimeline(tuple(k.request for k in w.keyframes), (2.0, 0.5), fps=10.0, interps=('slerp_z', 'w'))
    live = RenderRequest(w0_seeds=((50, 1.0),))
    assert w.override(live) is live  # no preview: unchanged
    w.scrub(0.75)
    assert w.override(live) == tl.frame(7) and w.override(live).seed_blend == 'slerp_z'
    w.play()
    for _ in range(30):
        w.update_request({}, 0.1)
    assert not w.play_anim and w.frame_index() == tl.num_frames - 1  # stopped on the last frame
    w.loop = True
    w.set_duration(2, 0.5)  # the segment back to the first keyframe
    w.play()
    w.time_sec = 0.0
    for _ in range(26):  # 2.6 s of a 3.0 s loop (2 + 0.5 + 0.5)
        w.update_request({}, 0.1)
    w.update_request({}, 0.5)
    assert w.play_anim and w.time_sec == pytest.approx(0.1)
    w.stop_preview()
    assert w.override(live) is live
    # z slerp falls back to W where a keyframe is not one seed (the combo offers it only where it applies).
    w.keyframes[1].request = RenderRequest(w0_seeds=((2, 0.5), (3, 0.5)))
    assert w.effective_interp(0) == 'w' and w.timeline() is not None


def test_session_state_round_trip_and_thumbnails():
    w = _widget_with(4, 5)
    img = np.random.default_rng(0).integers(0, 256, (256, 128, 3), dtype=np.uint8)
    thumb = make_thumbnail(img)
    assert thumb.shape == (64, 32, 3)
    w.keyframes[0].thumb = thumb
    state = json.loads(json.dumps(w.get_state()))
    w2 = KeyframeWidget(None)
    w2.set_state(state)
    assert [k.request for k in w2.keyframes] == [k.request for k in w.keyframes]
    assert np.array_equal(w2.keyframes[0].thumb, thumb) and w2.keyframes[1].thumb is None
    assert thumb_from_b64('not base64!') is None and thumb_from_b64(thumb_to_b64(thumb)).shape == thumb.shape
    state['keyframes'][1]['state'] = {'trunc_psi': 'high'}
    w2.set_state(state)  # a bad keyframe in a session: a note, the keyframes stay
    assert len(w2.keyframes) == 2 and 'keyframe 1' in w2.status


def test_render_video_calls_the_record_pane():
    w = _widget_with(1, 2)
    assert not w.render_video() and 'Record pane' in w.status

    class FakeRecord:
        calls: list = []

        def render_states(self, states, *, fps, view=None, name=None, widgets=None):
            self.calls.append((states, fps, view, name, widgets))
            return 1

    class FakeViz:
        record = FakeRecord()
        view = None

        def notify(self, text):
            pass

    w.viz = FakeViz()  # type: ignore[assignment]
    w.viz.view = w.__class__.__mro__[1].view.fget(KeyframeWidget(None))  # an empty frame view
    w.path = 'out/my_loop.json'
    assert w.render_video()
    ((states, fps, view, name, widgets),) = FakeRecord.calls
    assert states == w.timeline().expand() and fps == 30.0 and view is None and name == 'my_loop'
    assert widgets is w.keyframes[0].widgets


def test_stylemix_weight_field_clamps_and_reaches_the_request():
    from viz.stylemix_widget import StylemixWidget

    w = StylemixWidget(None)
    w.set_state({'enabled': [True, False, True], 'seed': 9, 'weight': 0.25})
    args: dict = {}
    w.update_request(args, 0.0)
    assert args['stylemix_idx'] == (0, 2) and args['stylemix_weight'] == 0.25 and args['stylemix_seed'] == 9
    w.set_state({'weight': 7})
    assert w.weight == 1.0 and 'stylemix_weight 7.0 is outside 0..1; clamped to 1' in w.last_note
    w.set_state({'weight': -1, 'enabled': []})
    args = {}
    w.update_request(args, 0.0)
    assert w.weight == 0.0 and args['stylemix_weight'] == 1.0  # no ws ticked: the request's default
