"""Frame-rate limiter and frame-time bookkeeping (pure Python, testable without a window)."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable


class FpsLimiter:
    """Sleeps at the end of each frame so that frames start at most ``fps`` times per second.

    The limiter keeps an absolute schedule (next deadline = previous deadline + 1/fps) so that short sleeps do not
    accumulate drift; when a frame overruns by more than one period the schedule restarts from now instead of
    trying to catch up with a burst of frames.

    Args:
        fps: target frames per second, > 0 (None or 0 disables the limit).
        clock: monotonic clock in seconds (injectable for tests).
        sleep: sleep function in seconds (injectable for tests).
    """

    def __init__(
        self,
        fps: float | None = 60,
        *,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None
        self.fps = fps

    @property
    def fps(self) -> float | None:
        return self._fps

    @fps.setter
    def fps(self, fps: float | None) -> None:
        if fps is not None and fps < 0:
            raise ValueError(f'FpsLimiter.fps: fps must be >= 0 or None, got {fps}')
        self._fps = fps if fps else None
        self._next = None

    def sleep_time(self, now: float) -> float:
        """Seconds to sleep at time ``now`` to honour the limit (0 when none); advances the schedule."""
        if self._fps is None:
            return 0.0
        period = 1.0 / self._fps
        if self._next is None or now - self._next > period:
            self._next = now + period
            return 0.0
        delay = max(self._next - now, 0.0)
        self._next += period
        return delay

    def tick(self) -> float:
        """Ends a frame: sleeps as needed. Returns the time slept, seconds."""
        delay = self.sleep_time(self._clock())
        if delay > 0:
            self._sleep(delay)
        return delay


class FrameTimer:
    """Rolling window of frame-to-frame intervals.

    Args:
        maxlen: number of recent intervals kept.
        clock: monotonic clock in seconds.
    """

    def __init__(self, maxlen: int = 120, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._last: float | None = None
        self.times_ms: collections.deque[float] = collections.deque(maxlen=maxlen)

    def tick(self) -> float:
        """Marks the start of a frame. Returns the time since the previous one, seconds (0 on the first call)."""
        now = self._clock()
        dt = 0.0 if self._last is None else now - self._last
        if self._last is not None:
            self.times_ms.append(dt * 1e3)
        self._last = now
        return dt

    def restart(self) -> None:
        """Forgets the previous frame: the next :meth:`tick` returns 0 and records no interval (after an idle wait)."""
        self._last = None

    def mean_ms(self) -> float:
        """Mean interval over the window, milliseconds (0 when empty)."""
        return sum(self.times_ms) / len(self.times_ms) if self.times_ms else 0.0

    def fps(self) -> float:
        """Frames per second implied by :meth:`mean_ms` (0 when unknown)."""
        m = self.mean_ms()
        return 1e3 / m if m > 0 else 0.0


class IdleGate:
    """Decides when a GUI frame loop may block waiting for events instead of drawing at the FPS limit.

    Dear ImGui redraws everything every frame, so an application that polls at its FPS limit burns CPU (and, under a
    software OpenGL such as Xvfb's, a lot of it) while nothing on screen changes. Like the "idling" modes of imgui
    application frameworks, the loop may instead wait for the next event (:func:`glfw.wait_events_timeout`) once
    nothing has happened for ``grace_sec`` -- input, window changes, a new request or result, an animation -- so that
    ImGui's own short-lived effects (hover highlights, layout settling over a couple of frames) still finish. Waiting
    ends at once on input; callers must not let the loop idle while something they poll (a pending render result)
    may arrive, or must wake it with :func:`glfw.post_empty_event`. While idle, a wait that ends without activity
    draws nothing, so an idle window costs only the wake-ups.

    Args:
        grace_sec: keep drawing at the FPS limit for this long after the last activity, >= 0.
        max_wait_sec: longest single wait (the loop still ticks this often when idle), > 0.
        clock: monotonic clock in seconds (injectable for tests).

    Raises:
        ValueError: ``grace_sec`` < 0 or ``max_wait_sec`` <= 0.
    """

    def __init__(
        self, grace_sec: float = 0.5, max_wait_sec: float = 0.25, *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        if not grace_sec >= 0:
            raise ValueError(f'IdleGate(): grace_sec must be >= 0, got {grace_sec}')
        if not max_wait_sec > 0:
            raise ValueError(f'IdleGate(): max_wait_sec must be > 0, got {max_wait_sec}')
        self.grace_sec = float(grace_sec)
        self.max_wait_sec = float(max_wait_sec)
        self.enabled = True
        self._clock = clock
        self._last_active = clock()

    @property
    def last_active(self) -> float:
        """Clock time of the last activity."""
        return self._last_active

    def mark_active(self) -> None:
        """Something happened (input, a changed request, a new result): draw at the FPS limit for a while."""
        self._last_active = self._clock()

    def wait_timeout(self, busy: bool = False) -> float | None:
        """Seconds the next frame may block waiting for events, or None to poll (draw at the FPS limit).

        Args:
            busy: the application has work in flight or animates (counts as activity).
        """
        if busy or not self.enabled:
            self.mark_active()
            return None
        if self._clock() - self._last_active < self.grace_sec:
            return None
        return self.max_wait_sec
