"""Device selection: CUDA -> MPS -> CPU, and what each device supports."""

from __future__ import annotations

import torch

_DEVICE_NAMES = ('auto', 'cpu', 'cuda', 'mps')


def _has_mps() -> bool:
    backend = getattr(torch.backends, 'mps', None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Device names usable on this machine, best first, e.g. `['cuda', 'cpu']`; always ends with 'cpu'."""
    names = []
    if torch.cuda.is_available():
        names.append('cuda')
    if _has_mps():
        names.append('mps')
    names.append('cpu')
    return names


def pick_device(name: str | torch.device | None = 'auto') -> torch.device:
    """Resolves a user's device choice.

    Args:
        name: 'auto' or None (best available: cuda, then mps, then cpu), 'cpu', 'cuda', 'cuda:<index>', 'mps',
            or a `torch.device`.

    Returns:
        The torch device.

    Raises:
        ValueError: On an unknown name or a device this machine does not have (the message lists the ones it has).
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name is None or name == 'auto':
        return torch.device(available_devices()[0])
    if not isinstance(name, str):
        raise ValueError(f'pick_device(): name must be one of {list(_DEVICE_NAMES)}, got {name!r}')
    kind, _, index = name.partition(':')
    if kind not in _DEVICE_NAMES or (index and not (kind == 'cuda' and index.isdigit())):
        raise ValueError(f'pick_device(): name must be one of {list(_DEVICE_NAMES)} (or cuda:<index>), got {name!r}')
    if kind not in available_devices():
        raise ValueError(
            f'pick_device(): device {name!r} is not available on this machine; available: {available_devices()} '
            '(use --device auto or cpu)'
        )
    if index and int(index) >= torch.cuda.device_count():
        raise ValueError(f'pick_device(): {name!r} does not exist; this machine has {torch.cuda.device_count()} GPU(s)')
    return torch.device(name)


def supports_fp16(device: torch.device | str) -> bool:
    """True where the networks may run layers in float16 (CUDA only, as in the reference: docs/compatibility.md §3)."""
    return torch.device(device).type == 'cuda'
