"""Small utilities shared across the toolkit (the subset of the reference `dnnlib.util` our users rely on)."""

from __future__ import annotations

from typing import Any


class EasyDict(dict):
    """A `dict` whose keys are also attributes: `d.x` is `d['x']`.

    Reference network pickles store `training_set_kwargs` and similar settings as `dnnlib.util.EasyDict`; it pickles
    as a plain dict subclass (its state is the dict items), so old files load into this class unchanged.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None
