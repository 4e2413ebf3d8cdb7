"""Click parameter types shared by every command-line tool: numbers must be finite.

`float('nan')`, `inf` and `1e400` parse as floats, and `click.FloatRange(min=0)` lets NaN through (every comparison
with NaN is False), so `--trunc nan` or `--rotate inf` used to render black images with exit code 0. Every float
option of our tools uses `FiniteFloat` / `FiniteFloatRange`; the GUI checks the same rule on every
`engine.protocol.RenderRequest`.
"""

from __future__ import annotations

import math
from typing import Any

import click

from engine import latents

__all__ = ['FINITE_FLOAT', 'FLOAT32_MAX', 'FiniteFloat', 'FiniteFloatRange', 'SeedList', 'check_finite']

FLOAT32_MAX = 3.4028234663852886e38  # the networks compute in float32: larger values become inf there


def check_finite(name: str, value: Any) -> float:
    """Returns `float(value)` when finite.

    Raises:
        ValueError: `<name> must be a finite number, got <value>` for NaN, +-inf or values beyond the float range.
    """
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f'{name} must be a finite number, got {value!r}') from None
    if not math.isfinite(x) or abs(x) > FLOAT32_MAX:
        raise ValueError(f'{name} must be a finite number (within float32, |x| <= 3.4e38), got {value!r}')
    return x


class FiniteFloatRange(click.FloatRange):
    """`click.FloatRange` that also refuses NaN and +-inf (and values like 1e400 that overflow to inf)."""

    name = 'finite float'

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) or isinstance(value, float):
            try:
                check_finite('value', value)
            except ValueError:
                self.fail(
                    f'{value!r} is not a finite float32 number (NaN, infinities and |x| > 3.4e38 are refused)',
                    param,
                    ctx,
                )
        return super().convert(value, param, ctx)


class FiniteFloat(FiniteFloatRange):
    """A finite float with no range (use instead of `type=float`)."""

    def __init__(self) -> None:
        super().__init__()


FINITE_FLOAT = FiniteFloat()


class SeedList(click.ParamType):
    """A list of uint32 values typed as ranges and lists, ``'0-3,7'`` -> ``[0, 1, 2, 3, 7]``
    (``engine.latents.parse_range``), each in [0, 2**32): seeds, or small indices such as style layers.

    Args:
        noun: what the values are, for the error message (``'<noun> must be in [0, 2**32), got <value>'``).
    """

    name = 'range'

    def __init__(self, noun: str = 'seeds') -> None:
        self.noun = noun

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        try:
            values = latents.parse_range(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        bad = [v for v in values if not 0 <= v < 2**32]
        if bad:
            self.fail(f'{self.noun} must be in [0, 2**32), got {bad[0]}', param, ctx)
        return values
