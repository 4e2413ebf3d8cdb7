"""Who may run a TorchScript archive: the one rule for the FID/KID detector and the projector's VGG16 file.

A TorchScript archive (`torch.jit.save`, also wrapped in a pickle as the reference tools' `inception-2015-12-05.pkl`)
is a program, not data: loading it and calling `forward` runs whatever its code says, and TorchScript can open and
write files (`torch.from_file(path, shared=True)` maps any file writable). We do not reimplement those networks, so
we run the archive -- but only when one of these holds:

1. the caller passes `trust=True` (CLI `--trust`), or
2. the file's SHA-256 is one the user pinned in `$SG3VIZ_TRUSTED_SHA256` (comma-separated hex digests; the error
   message prints the digest to pin), or
3. the file's SHA-256 is in `PUBLISHED_SHA256` (files whose digest we verified against the publisher's copy).

Otherwise `check_torchscript_allowed` raises `UntrustedCodeError` BEFORE anything is deserialised. The hash is of the
whole file, so a pinned or published file cannot be changed without being refused.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re

from engine.load_errors import LoadError

__all__ = [
    'PUBLISHED_SHA256',
    'TRUSTED_SHA256_ENV',
    'UntrustedCodeError',
    'check_torchscript_allowed',
    'file_sha256',
    'trusted_digests',
]

TRUSTED_SHA256_ENV = 'SG3VIZ_TRUSTED_SHA256'

# SHA-256 of published files verified against the publisher's copy, by file name (documentation only: any listed
# digest is accepted for any TorchScript file). Empty until someone with the files verifies them: we have not been
# able to download and hash them here, and a digest we did not compute ourselves would be a guess.
PUBLISHED_SHA256: dict[str, frozenset[str]] = {
    'inception-2015-12-05.pkl': frozenset(),
    'vgg16.pt': frozenset(),
}

_HEX64 = re.compile(r'^[0-9a-f]{64}$')


class UntrustedCodeError(LoadError):
    """A TorchScript archive (code) was not run: no `trust=True` and its SHA-256 is neither pinned nor published."""


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def trusted_digests() -> frozenset[str]:
    """Published digests plus those pinned in `$SG3VIZ_TRUSTED_SHA256`.

    Raises:
        LoadError: If the environment variable holds something that is not a 64-digit hex SHA-256.
    """
    pinned = set()
    for item in os.environ.get(TRUSTED_SHA256_ENV, '').replace(';', ',').split(','):
        item = item.strip().lower()
        if not item:
            continue
        if not _HEX64.match(item):
            raise LoadError(
                f'{TRUSTED_SHA256_ENV} must hold 64-digit hex SHA-256 digests separated by commas, got {item[:80]!r}; '
                'compute one with `sha256sum FILE`'
            )
        pinned.add(item)
    published = frozenset().union(*PUBLISHED_SHA256.values())
    return frozenset(pinned) | published


def check_torchscript_allowed(
    path: str | os.PathLike, *, trust: bool, what: str = 'TorchScript file', digest: str | None = None
) -> str:
    """Raises unless the TorchScript archive at `path` may run (see the module docstring); returns its SHA-256.

    Call this before `torch.jit.load`, `pickle.load` or anything else that deserialises the file.

    Args:
        path: The file (a TorchScript zip, or a pickle wrapping one).
        trust: The user's explicit permission to run code from files (`--trust`).
        what: What the file is, for the message ('FID/KID detector', 'VGG16 feature file').
        digest: Its SHA-256 when the caller already computed it.

    Raises:
        UntrustedCodeError: Not trusted, not pinned, not published; the message gives the digest and both fixes.
        LoadError: Malformed `$SG3VIZ_TRUSTED_SHA256`.
        OSError: If the file cannot be read.
    """
    path = pathlib.Path(path)
    digest = digest or file_sha256(path)
    if trust or digest in trusted_digests():
        return digest
    raise UntrustedCodeError(
        f'{path}: the {what} is a TorchScript program, which can read and write files when it runs, and its SHA-256 '
        f'{digest} is not a published file we know, so it was not loaded. If you trust this file, pass --trust '
        f'(trust=True), or pin this exact file with {TRUSTED_SHA256_ENV}={digest}'
    )
