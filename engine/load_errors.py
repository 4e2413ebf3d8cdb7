"""Errors of network loading, shared by the loaders (standard library only, so any process may import them)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ['LoadError', 'ResourceLimitError', 'UnsafePickleError']


class LoadError(Exception):
    """A network could not be loaded; the message says what is wrong and how to fix it (shown to users as is)."""


class ResourceLimitError(LoadError):
    """A file asks for more work than a limit allows (nesting depth, expanded size, network size, ...).

    The message names the limit and the value found. Raised before the work is done.
    """


class UnsafePickleError(LoadError):
    """Safe mode refused a pickle; `.names` lists the refused globals / classes."""

    def __init__(self, names: Iterable[str], detail: str = '') -> None:
        self.names = sorted(set(names))
        super().__init__(
            f'refused to load in safe mode: the pickle references {", ".join(self.names)}, which safe mode does not '
            'allow (it only rebuilds known StyleGAN2/StyleGAN3 networks and never runs code from the file)'
            + (f'; {detail}' if detail else '')
            + '. If you trust the file and its author, load it with trust=True (CLI: --trust); that executes code '
            'embedded in the file.'
        )
