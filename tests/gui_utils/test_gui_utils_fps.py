"""gui_utils pure parts: FPS limiter schedule, frame timer, idle gate, image conversion for texture upload, UI scale."""

from __future__ import annotations

import numpy as np
import pytest

from gui_utils.fps import FpsLimiter, FrameTimer, IdleGate


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def test_gui_utils_fps_limiter_keeps_schedule():
    clock = FakeClock()
    lim = FpsLimiter(50, clock=clock, sleep=clock.sleep)
    frame_starts = []
    for _ in range(6):
        frame_starts.append(clock.t)
        clock.t += 0.005  # 5 ms of work per frame
        lim.tick()
    gaps = np.diff(frame_starts)
    np.testing.assert_allclose(gaps[1:], 0.02, atol=1e-9)  # 50 FPS once the schedule runs


def test_gui_utils_fps_limiter_overrun_restarts_and_off():
    clock = FakeClock()
    lim = FpsLimiter(100, clock=clock, sleep=clock.sleep)
    lim.tick()
    clock.t += 1.0  # a long stall: no burst of catch-up frames
    assert lim.tick() == 0.0
    clock.t += 0.001
    assert lim.tick() == pytest.approx(0.009)
    lim.fps = None
    assert lim.tick() == 0.0
    with pytest.raises(ValueError, match='fps'):
        lim.fps = -1


def test_gui_utils_frame_timer():
    clock = FakeClock()
    ft = FrameTimer(maxlen=3, clock=clock)
    assert ft.tick() == 0.0 and ft.fps() == 0.0
    for dt in (0.01, 0.02, 0.03, 0.04):
        clock.t += dt
        ft.tick()
    assert list(ft.times_ms) == pytest.approx([20.0, 30.0, 40.0])
    assert ft.mean_ms() == pytest.approx(30.0) and ft.fps() == pytest.approx(1000 / 30)


def test_gui_utils_as_rgba_u8_and_ui_scale():
    from gui_utils.gl_utils import as_rgba_u8
    from gui_utils.imgui_window import compute_ui_scale

    rgb = np.full((2, 3, 3), 7, np.uint8)
    out = as_rgba_u8(rgb)
    assert out.shape == (2, 3, 4) and (out[..., 3] == 255).all() and (out[..., :3] == 7).all()
    assert as_rgba_u8(np.zeros((2, 2), np.uint8)).shape == (2, 2, 4)
    with pytest.raises(TypeError, match='uint8'):
        as_rgba_u8(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match='shape'):
        as_rgba_u8(np.zeros((2, 2, 2), np.uint8))
    assert compute_ui_scale(1.5, 2.0) == 3.0
    assert compute_ui_scale(2.0, 10.0) == 4.0
    with pytest.raises(ValueError, match='user_scale'):
        compute_ui_scale(1.0, 0.0)


def test_gui_utils_idle_gate_waits_only_after_grace():
    clock = FakeClock()
    gate = IdleGate(grace_sec=0.5, max_wait_sec=0.25, clock=clock)
    assert gate.wait_timeout() is None  # just created: counts as activity
    clock.t = 0.49
    assert gate.wait_timeout() is None
    clock.t = 0.51
    assert gate.wait_timeout() == 0.25  # quiet for longer than the grace period: wait for events
    gate.mark_active()  # input / a new request / a new result
    assert gate.last_active == 0.51
    assert gate.wait_timeout() is None
    clock.t = 5.0
    assert gate.wait_timeout(busy=True) is None  # busy (render in flight, animation) counts as activity
    clock.t = 5.4
    assert gate.wait_timeout() is None
    clock.t = 5.6
    assert gate.wait_timeout() == 0.25
    gate.enabled = False
    assert gate.wait_timeout() is None


@pytest.mark.parametrize('kwargs', [dict(grace_sec=-1), dict(max_wait_sec=0), dict(max_wait_sec=float('nan'))])
def test_gui_utils_idle_gate_rejects_bad_args(kwargs):
    with pytest.raises(ValueError, match='IdleGate'):
        IdleGate(**kwargs)


def test_gui_utils_frame_timer_restart_after_idle():
    clock = FakeClock()
    timer = FrameTimer(clock=clock)
    timer.tick()
    clock.t = 0.02
    assert timer.tick() == pytest.approx(0.02)
    timer.restart()  # an idle wait of 3 s follows
    clock.t = 3.0
    assert timer.tick() == 0.0
    assert list(timer.times_ms) == [pytest.approx(20.0)]  # the wait is not a frame time
