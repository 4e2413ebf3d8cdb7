"""A static pre-scan of a pickle stream: bounds nesting depth and expanded size before anything is unpickled.

Unpickling itself is linear in the file size, but what comes out need not be: a 1 KB pickle can describe a list
holding the same list twice, 60 levels deep (2**60 elements when walked), or a tuple nested 100,000 deep that
overflows the stack when hashed as a dict key. `scan_pickle` walks the opcodes (`pickletools.genops`, nothing is
built or called) and simulates the unpickler's stack with one small record per object: its nesting depth and its
*expanded size* (the number of objects a walk that does not notice sharing would visit). Memo references
(GET after PUT/MEMOIZE) share the record, so containers filled after being memoised are counted where they are
used. The scan refuses, naming the limit, when

- an object is nested deeper than `ScanLimits.max_depth`,
- the expanded size of the stream exceeds `ScanLimits.max_expanded`,
- the stream has more than `ScanLimits.max_opcodes` opcodes, or memo indices above `ScanLimits.max_memo`.

A truncated stream or an unknown opcode raises `EOFError` / `pickle.UnpicklingError` as unpickling would.
"""

from __future__ import annotations

import dataclasses
import pickle
import pickletools
from typing import IO

from engine.load_errors import ResourceLimitError

__all__ = ['ScanLimits', 'ScanReport', 'scan_pickle']


@dataclasses.dataclass(frozen=True)
class ScanLimits:
    """Limits of `scan_pickle` (the defaults fit every network pickle of the reference tools many times over).

    Attributes:
        max_depth: Deepest nesting of containers / calls (a 1024-px StyleGAN3 snapshot needs about 40).
        max_expanded: Objects a sharing-unaware walk may visit (a 1024-px snapshot: about 1e5).
        max_opcodes: Opcodes in the stream.
        max_memo: Largest memo index.
    """

    max_depth: int = 100
    max_expanded: int = 10_000_000
    max_opcodes: int = 20_000_000
    max_memo: int = 10_000_000


@dataclasses.dataclass(frozen=True)
class ScanReport:
    """What the scan saw: deepest nesting, expanded size and opcode count of the stream."""

    depth: int
    expanded: int
    opcodes: int


class _Node:
    __slots__ = ('depth', 'size')

    def __init__(self, depth: int, size: int) -> None:
        self.depth = depth
        self.size = size


_MARK = object()
_PUT = {'PUT', 'BINPUT', 'LONG_BINPUT'}
_GET = {'GET', 'BINGET', 'LONG_BINGET'}
# Opcodes that add the items above them to the object below them (the object stays on the stack, same identity).
_IN_PLACE = {'APPEND', 'APPENDS', 'SETITEM', 'SETITEMS', 'ADDITEMS', 'BUILD'}


class _Scanner:
    def __init__(self, limits: ScanLimits) -> None:
        self.limits = limits
        self.stack: list = []
        self.memo: dict[int, _Node] = {}
        self.max_depth = 0

    def new(self, children: list) -> _Node:
        nodes = [c for c in children if c is not _MARK]
        depth = 1 + max((c.depth for c in nodes), default=-1)
        size = 1 + sum(c.size for c in nodes)
        return self.check(_Node(depth, size))

    def check(self, node: _Node) -> _Node:
        if node.depth > self.limits.max_depth:
            raise ResourceLimitError(
                f'the pickle nests objects deeper than {self.limits.max_depth} levels (limit max_depth); network '
                'pickles need far less: a damaged or hostile file?'
            )
        if node.size > self.limits.max_expanded:
            raise ResourceLimitError(
                f'the pickle expands to more than {self.limits.max_expanded:,} objects through shared references '
                '(limit max_expanded); network pickles need far less: a damaged or hostile file (a reference bomb)?'
            )
        self.max_depth = max(self.max_depth, node.depth)
        return node

    def pop_mark(self) -> list:
        items: list = []
        while self.stack:
            top = self.stack.pop()
            if top is _MARK:
                return items
            items.append(top)
        raise pickle.UnpicklingError('could not find MARK')

    def pop(self, n: int) -> list:
        if len(self.stack) < n:
            raise pickle.UnpicklingError('unpickling stack underflow')
        items = self.stack[len(self.stack) - n :]
        del self.stack[len(self.stack) - n :]
        return items

    def step(self, op: pickletools.OpcodeInfo, arg: object) -> None:
        name = op.name
        if name == 'MARK':
            self.stack.append(_MARK)
        elif name in ('PROTO', 'FRAME'):
            pass
        elif name in _PUT or name == 'MEMOIZE':
            index = len(self.memo) if name == 'MEMOIZE' else int(arg)  # type: ignore[call-overload]
            if index > self.limits.max_memo:
                raise ResourceLimitError(f'the pickle uses memo index {index} (limit max_memo {self.limits.max_memo})')
            if not self.stack or self.stack[-1] is _MARK:
                raise pickle.UnpicklingError(f'{name} on an empty stack')
            self.memo[index] = self.stack[-1]
        elif name in _GET:
            node = self.memo.get(int(arg))  # type: ignore[call-overload]
            if node is None:
                raise pickle.UnpicklingError(f'memo key {arg} not found')
            self.stack.append(node)
        elif name == 'DUP':
            self.stack.append(self.stack[-1])
        elif name in _IN_PLACE:
            added = self.pop_mark() if pickletools.markobject in op.stack_before else self.pop(len(op.stack_before) - 1)
            if not self.stack or self.stack[-1] is _MARK:
                raise pickle.UnpicklingError(f'{name} without a target')
            target = self.stack[-1]
            nodes = [c for c in added if c is not _MARK]
            target.depth = max([target.depth] + [c.depth + 1 for c in nodes])
            target.size += sum(c.size for c in nodes)
            self.check(target)
        else:
            before = op.stack_before
            if pickletools.markobject in before:
                items = self.pop_mark()
                items += self.pop(before.index(pickletools.markobject))
            else:
                items = self.pop(len(before))
            if op.stack_after:
                self.stack.append(self.new(items))


def scan_pickle(file: IO[bytes], limits: ScanLimits | None = None) -> ScanReport:
    """Scans a pickle stream (without unpickling it) and refuses it when it exceeds `limits`.

    Reads from the current position to the STOP opcode; the caller seeks back before unpickling.

    Args:
        file: Binary file object positioned at the pickle.
        limits: Limits (default `ScanLimits()`).

    Returns:
        ScanReport with the deepest nesting, the expanded size and the number of opcodes.

    Raises:
        ResourceLimitError: A limit is exceeded (the message names it).
        EOFError: The stream ends before its STOP opcode (a truncated file).
        pickle.UnpicklingError: An unknown opcode or an inconsistent stream (a corrupt file).
    """
    limits = limits or ScanLimits()
    scanner = _Scanner(limits)
    count = 0
    try:
        for op, arg, _pos in pickletools.genops(file):
            count += 1
            if count > limits.max_opcodes:
                raise ResourceLimitError(f'the pickle has more than {limits.max_opcodes:,} opcodes (limit max_opcodes)')
            if op.name == 'STOP':
                break
            scanner.step(op, arg)
    except ValueError as e:
        text = str(e)
        if (
            'exhausted' in text
            or 'remain' in text
            or 'EOF' in text
            or 'not enough data' in text
            or 'expected' in text
            and 'bytes' in text
        ):
            raise EOFError(f'the pickle is truncated ({text})') from None
        raise pickle.UnpicklingError(text) from None
    else:
        if count == 0 or op.name != 'STOP':
            raise EOFError('the pickle is truncated (no STOP opcode)')
    expanded = max((n.size for n in scanner.stack if n is not _MARK), default=0)
    return ScanReport(depth=scanner.max_depth, expanded=expanded, opcodes=count)
