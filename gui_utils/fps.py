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

    def mean_ms(self) -> float:
        """Mean interval over the window, milliseconds (0 when empty)."""
        return sum(self.times_ms) / len(self.times_ms) if self.times_ms else 0.0

    def fps(self) -> float:
        """Frames per second implied by :meth:`mean_ms` (0 when unknown)."""
        m = self.mean_ms()
        return 1e3 / m if m > 0 else 0.0
