"""kernel/trace/fgraph.c of Linux 6.12, the words: the function-graph shadow stack.

Every task has a ``ret_stack`` of ``SHADOW_STACK_SIZE`` bytes (512 words)
that grows upwards from word 0. A traced call pushes an ``ftrace_ret_stack``
frame (ftrace_push_return_trace()), then one control word; fgraph_ops that
want to keep data until the return reserve words above it
(fgraph_reserve_data()), each closed by a DATA control word. The word below
``curr_ret_stack`` always says, in its low 10 bits, how far down the current
frame starts (get_ret_stack()). The top 16 words are per-task variables, one
per fgraph_ops slot::

    ret_stack[511] +------------------------------------------+
                   | task var 15 ... task var 0 (16 words)    |
    ret_stack[496] +------------------------------------------+
                   | (free: new frames start below word 490)  |
                   |                                          | <- curr_ret_stack
                   +------------------------------------------+
                   | DATA: idx 3 | size 2-1 | type 2 | off 8  |  the offset counts
                   | data word 2                              |  back to the frame
                   | data word 1                              |
                   +------------------------------------------+
                   | BITMAP: BIT(3)|BIT(0) | type 1 | off 5    |  ops to call on return
                   +------------------------------------------+
                   | retp      (where the return address was) |  struct ftrace_ret_stack,
                   | subtime   (the function profiler's)      |  5 words in 6.12 with
                   | calltime  (trace_clock_local() at entry) |  CONFIG_FUNCTION_PROFILER
                   | func                                     |  (calltime left the
                   | ret       (the saved return address)     |  frame in 6.13)
                   +------------------------------------------+ <- the frame's offset

A control word (``unsigned long``; the macros of fgraph.c, not its comment,
which says bits 12-17 and 18-23 for DATA)::

     63        28 27                 12 11 10 9          0
    +------------+---------------------+-----+------------+
    |     0      | BITMAP: fgraph_ops  |type | offset to  |
    |            | indexes (16 bits)   |     | the frame  |
    +------------+----------+----------+-----+------------+
    |     0      | DATA:    | 20..17   16..12             |
    |            |          | owner    size-1 (words)     |
    +------------+----------+--------------------+--------+

:class:`ShadowStack` is the stack as words with the kernel's operations on it
(push, reserve, commit, pop); it reads a task's stack copied out of emulated
memory as well, and :meth:`ShadowStack.inspect` explains every word.
"""

from __future__ import annotations

import errno
import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from ...errors import ShadowStackError

__all__ = [
    "FGRAPH_ARRAY_SIZE", "FGRAPH_FRAME_OFFSET", "SHADOW_STACK_MAX_OFFSET", "SHADOW_STACK_OFFSET",
    "SHADOW_STACK_SIZE", "ControlWord", "FgraphType", "Frame", "ShadowStack", "WordRow",
]

WORD = 8
SHADOW_STACK_SIZE = 4096
SHADOW_STACK_OFFSET = SHADOW_STACK_SIZE // WORD            # 512 words
#: struct ftrace_ret_stack in 6.12 on x86-64 with the profiler: ret, func, calltime,
#: subtime, retp (no fp: x86 does not define HAVE_FUNCTION_GRAPH_FP_TEST)
FRAME_FIELDS = ("ret", "func", "calltime", "subtime", "retp")
FGRAPH_FRAME_SIZE = WORD * len(FRAME_FIELDS)
FGRAPH_FRAME_OFFSET = FGRAPH_FRAME_SIZE // WORD            # 5 words
FGRAPH_ARRAY_SIZE = 16
SHADOW_STACK_MAX_OFFSET = SHADOW_STACK_OFFSET - (FGRAPH_FRAME_OFFSET + 1 + FGRAPH_ARRAY_SIZE)   # 490
TASK_VARS = SHADOW_STACK_OFFSET - FGRAPH_ARRAY_SIZE        # word 496

FGRAPH_FRAME_OFFSET_BITS = 10
FGRAPH_FRAME_OFFSET_MASK = (1 << FGRAPH_FRAME_OFFSET_BITS) - 1
FGRAPH_TYPE_SHIFT = FGRAPH_FRAME_OFFSET_BITS               # 10
FGRAPH_TYPE_BITS = 2
FGRAPH_TYPE_MASK = (1 << FGRAPH_TYPE_BITS) - 1
FGRAPH_INDEX_SHIFT = FGRAPH_TYPE_SHIFT + FGRAPH_TYPE_BITS  # 12: BITMAP's bitmap
FGRAPH_INDEX_BITS = 16
FGRAPH_INDEX_MASK = (1 << FGRAPH_INDEX_BITS) - 1
FGRAPH_DATA_SHIFT = FGRAPH_TYPE_SHIFT + FGRAPH_TYPE_BITS   # 12: DATA's size - 1
FGRAPH_DATA_BITS = 5
FGRAPH_DATA_MASK = (1 << FGRAPH_DATA_BITS) - 1
FGRAPH_MAX_DATA_SIZE = WORD * (1 << FGRAPH_DATA_BITS)      # 256 bytes
FGRAPH_DATA_INDEX_SHIFT = FGRAPH_DATA_SHIFT + FGRAPH_DATA_BITS   # 17: DATA's owner
FGRAPH_DATA_INDEX_BITS = 4
FGRAPH_DATA_INDEX_MASK = (1 << FGRAPH_DATA_INDEX_BITS) - 1
_U64 = (1 << 64) - 1


class FgraphType(IntEnum):
    """Bits 10-11 of a control word."""

    RESERVED = 0     # pushed, entry functions not run yet
    BITMAP = 1       # the frame's word: which fgraph_ops get the return
    DATA = 2         # closes data an fgraph_ops reserved


@dataclass(frozen=True)
class ControlWord:
    """One control word. ``offset``: words back to the frame it belongs to (from the
    word itself). BITMAP words have ``bitmap``; DATA words ``index`` (the owner's
    fgraph_ops slot) and ``size`` (data words, 1-32)."""

    type: FgraphType
    offset: int
    bitmap: int = 0
    index: int = 0
    size: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.offset <= FGRAPH_FRAME_OFFSET_MASK:
            raise ValueError(f"offset {self.offset} does not fit in {FGRAPH_FRAME_OFFSET_BITS} bits")
        if not 0 <= self.bitmap <= FGRAPH_INDEX_MASK:
            raise ValueError(f"bitmap {self.bitmap:#x} does not fit in {FGRAPH_INDEX_BITS} bits")
        if self.type is FgraphType.DATA and not (1 <= self.size <= FGRAPH_DATA_MASK + 1
                                                  and 0 <= self.index <= FGRAPH_DATA_INDEX_MASK):
            raise ValueError(f"DATA word needs size 1-32 and index 0-15, not {self.size} and {self.index}")

    @classmethod
    def reserved(cls, offset: int = FGRAPH_FRAME_OFFSET) -> ControlWord:
        return cls(FgraphType.RESERVED, offset)

    @classmethod
    def make_bitmap(cls, bitmap: int, offset: int = FGRAPH_FRAME_OFFSET) -> ControlWord:
        """set_bitmap()."""
        return cls(FgraphType.BITMAP, offset, bitmap=bitmap)

    @classmethod
    def make_data(cls, index: int, size: int, offset: int) -> ControlWord:
        """make_data_type_val()."""
        return cls(FgraphType.DATA, offset, index=index, size=size)

    def encode(self) -> int:
        value = (int(self.type) << FGRAPH_TYPE_SHIFT) | self.offset
        if self.type is FgraphType.BITMAP:
            value |= self.bitmap << FGRAPH_INDEX_SHIFT
        elif self.type is FgraphType.DATA:
            value |= ((self.size - 1) << FGRAPH_DATA_SHIFT) | (self.index << FGRAPH_DATA_INDEX_SHIFT)
        return value

    @classmethod
    def decode(cls, value: int) -> ControlWord:
        """__get_offset(), __get_type(), get_bitmap_bits(), __get_data_index(),
        __get_data_size(). Raises ValueError for bits no control word has."""
        kind = (value >> FGRAPH_TYPE_SHIFT) & FGRAPH_TYPE_MASK
        offset = value & FGRAPH_FRAME_OFFSET_MASK
        if kind == FgraphType.BITMAP:
            used = FGRAPH_INDEX_SHIFT + FGRAPH_INDEX_BITS
            word = cls(FgraphType.BITMAP, offset, bitmap=(value >> FGRAPH_INDEX_SHIFT) & FGRAPH_INDEX_MASK)
        elif kind == FgraphType.DATA:
            used = FGRAPH_DATA_INDEX_SHIFT + FGRAPH_DATA_INDEX_BITS
            word = cls(FgraphType.DATA, offset,
                       index=(value >> FGRAPH_DATA_INDEX_SHIFT) & FGRAPH_DATA_INDEX_MASK,
                       size=((value >> FGRAPH_DATA_SHIFT) & FGRAPH_DATA_MASK) + 1)
        elif kind == FgraphType.RESERVED:
            used = FGRAPH_TYPE_SHIFT + FGRAPH_TYPE_BITS
            word = cls(FgraphType.RESERVED, offset)
        else:
            raise ValueError(f"{value:#x} is no control word: type 3 is unused")
        if value >> used:
            raise ValueError(f"{value:#x} is no {word.type.name} control word: bits above {used - 1} are set")
        return word

    def __str__(self) -> str:
        if self.type is FgraphType.BITMAP:
            ops = ",".join(str(i) for i in range(FGRAPH_INDEX_BITS) if self.bitmap >> i & 1) or "-"
            return f"BITMAP ops {{{ops}}} offset {self.offset}"
        if self.type is FgraphType.DATA:
            return f"DATA ops {self.index} size {self.size} offset {self.offset}"
        return f"RESERVED offset {self.offset}"


@dataclass(frozen=True)
class Frame:
    """One ftrace_ret_stack, at word ``offset``, with its control word and the data the
    fgraph_ops reserved above it (slot -> words)."""

    offset: int
    ret: int
    func: int
    calltime: int
    subtime: int
    retp: int
    control: ControlWord
    data: Mapping[int, tuple[int, ...]] = field(default_factory=dict)

    @property
    def top(self) -> int:
        """One past the frame's last word (its control word or last data word)."""
        return self.offset + FGRAPH_FRAME_OFFSET + 1 + sum(len(d) + 1 for d in self.data.values())


@dataclass(frozen=True)
class WordRow:
    """One word of the stack as :meth:`ShadowStack.inspect` explains it."""

    index: int
    value: int
    kind: str          # frame field name, "control", "data", "task var", "free"
    detail: str


@dataclass(repr=False)
class ShadowStack:
    """A task's ret_stack words and its ``curr_ret_stack``, ``curr_ret_depth`` and
    ``trace_overrun``, with the kernel's operations on them (the same names)."""

    words: list[int] = field(default_factory=lambda: [0] * SHADOW_STACK_OFFSET)
    curr_ret_stack: int = 0
    curr_ret_depth: int = -1
    trace_overrun: int = 0

    def __post_init__(self) -> None:
        if len(self.words) != SHADOW_STACK_OFFSET:
            raise ValueError(f"a shadow stack has {SHADOW_STACK_OFFSET} words, not {len(self.words)}")

    @classmethod
    def from_bytes(cls, data: bytes, curr_ret_stack: int, curr_ret_depth: int = -1,
                   trace_overrun: int = 0) -> ShadowStack:
        """A ret_stack read out of memory (4096 little-endian bytes)."""
        if len(data) != SHADOW_STACK_SIZE:
            raise ValueError(f"a shadow stack is {SHADOW_STACK_SIZE} bytes, not {len(data)}")
        words = [int.from_bytes(data[i:i + WORD], "little") for i in range(0, SHADOW_STACK_SIZE, WORD)]
        return cls(words, curr_ret_stack, curr_ret_depth, trace_overrun)

    def to_bytes(self) -> bytes:
        return b"".join((w & _U64).to_bytes(WORD, "little") for w in self.words)

    # ---- the kernel's operations -------------------------------------------------

    def push_return_trace(self, ret: int, func: int, calltime: int = 0, retp: int = 0) -> int:
        """ftrace_push_return_trace(): the offset of the new frame's control word
        (RESERVED for now), or -EBUSY, counting an overrun, when it does not fit."""
        if self.curr_ret_stack + FGRAPH_FRAME_OFFSET + 1 >= SHADOW_STACK_MAX_OFFSET:
            self.trace_overrun += 1
            return -errno.EBUSY
        base = self.curr_ret_stack
        offset = base + FGRAPH_FRAME_OFFSET
        self.words[offset] = ControlWord.reserved().encode()
        self.curr_ret_stack = offset + 1
        for k, value in ((0, ret), (1, func), (2, calltime), (4, retp)):   # subtime: the profiler's
            self.words[base + k] = value & _U64
        return offset

    def reserve_data(self, index: int, size_bytes: int) -> int | None:
        """fgraph_reserve_data(): the word offset of ``size_bytes`` for fgraph_ops slot
        ``index`` above the current frame, or None if too big or out of room."""
        if size_bytes > FGRAPH_MAX_DATA_SIZE or size_bytes <= 0:
            return None
        size = (size_bytes + WORD - 1) // WORD
        below = ControlWord.decode(self.words[self.curr_ret_stack - 1])
        start, top = self.curr_ret_stack, self.curr_ret_stack + size + 1
        if top >= SHADOW_STACK_MAX_OFFSET:
            return None
        self.words[top - 1] = ControlWord.make_data(index, size, below.offset + size + 1).encode()
        self.curr_ret_stack = top
        return start

    def enter(self, ret: int, func: int, wants: Mapping[int, bytes | None], *, calltime: int = 0,
              retp: int = 0) -> int:
        """function_graph_enter() with the entry functions' answers: ``wants`` maps the
        fgraph_ops slots that take this call to the data each stores (None: none).
        0, or -EBUSY when nothing takes it or the stack is full."""
        self.curr_ret_depth += 1
        offset = self.push_return_trace(ret, func, calltime, retp)
        if offset < 0:
            self.curr_ret_depth -= 1
            return offset
        bitmap = 0
        for index in sorted(wants):
            data = wants[index]
            saved = self.curr_ret_stack
            at = self.reserve_data(index, len(data)) if data else None
            if data and at is None:
                self.curr_ret_stack = saved      # the entry function gives up the call
                continue
            if data and at is not None:
                padded = data.ljust((len(data) + WORD - 1) // WORD * WORD, b"\0")
                for k in range(0, len(padded), WORD):
                    self.words[at + k // WORD] = int.from_bytes(padded[k:k + WORD], "little")
            bitmap |= 1 << index
        if not bitmap:
            self.curr_ret_stack -= FGRAPH_FRAME_OFFSET + 1
            self.curr_ret_depth -= 1
            return -errno.EBUSY
        self.words[offset] = ControlWord.make_bitmap(bitmap | 1).encode()   # bit 0: tail-call mark
        return 0

    def pop(self) -> Frame:
        """__ftrace_return_to_handler() without the callbacks: the top frame, removed."""
        frame = self.top()
        if frame is None:
            raise ShadowStackError("the shadow stack is empty: nothing to return to", self.curr_ret_stack)
        self.curr_ret_stack = frame.offset
        self.curr_ret_depth -= 1
        return frame

    # ---- reading ---------------------------------------------------------------

    def _frame_below(self, offset: int) -> Frame | None:
        """get_ret_stack(): the frame the word below ``offset`` points back to."""
        if offset <= 0:
            return None
        word_at = offset - 1
        try:
            word = ControlWord.decode(self.words[word_at])
        except ValueError as e:
            raise ShadowStackError(str(e), word_at) from None
        if not 0 < word.offset <= word_at:
            raise ShadowStackError(f"control word offset {word.offset} points outside the stack", word_at)
        base = word_at - word.offset
        data: dict[int, tuple[int, ...]] = {}
        at = word_at
        while True:
            w = ControlWord.decode(self.words[at])
            if w.type is not FgraphType.DATA:
                break
            data[w.index] = tuple(self.words[at - w.size:at])
            at -= w.size + 1
            if at < base + FGRAPH_FRAME_OFFSET:
                raise ShadowStackError("DATA words run into their frame", at)
        control = ControlWord.decode(self.words[base + FGRAPH_FRAME_OFFSET])
        if at != base + FGRAPH_FRAME_OFFSET or control.type is FgraphType.DATA:
            raise ShadowStackError("no frame control word where the offsets lead", base + FGRAPH_FRAME_OFFSET)
        ret, func, calltime, subtime, retp = self.words[base:base + FGRAPH_FRAME_OFFSET]
        return Frame(base, ret, func, calltime, subtime, retp, control, dict(reversed(list(data.items()))))

    def top(self) -> Frame | None:
        """The current frame (ftrace_graph_get_ret_stack(task, 0)), None when empty."""
        return self._frame_below(self.curr_ret_stack)

    def frames(self) -> list[Frame]:
        """Every frame, the innermost call first. Raises :class:`ShadowStackError`
        (with the word index) when the words do not chain down to 0."""
        out: list[Frame] = []
        offset = self.curr_ret_stack
        while offset > 0:
            frame = self._frame_below(offset)
            assert frame is not None
            out.append(frame)
            offset = frame.offset
        return out

    def task_var(self, index: int) -> int:
        """fgraph_get_task_var() of slot ``index``."""
        return self.words[TASK_VARS + index]

    def inspect(self, symbol: Callable[[int], str] = hex,
                ops: Mapping[int, str] | None = None) -> list[WordRow]:
        """Every used word, top down, explained: frame fields (``ret`` and ``func``
        named by ``symbol``), control words (with the ops names of their slots),
        reserved data (with its owner), and the task variables."""
        ops = ops or {}
        rows: list[WordRow] = []

        def name_ops(bits: int) -> str:
            return ", ".join(f"{i}:{ops.get(i, '?')}" for i in range(FGRAPH_INDEX_BITS) if bits >> i & 1)

        for k in range(FGRAPH_ARRAY_SIZE - 1, -1, -1):
            rows.append(WordRow(TASK_VARS + k, self.words[TASK_VARS + k], "task var",
                                f"ops {k}" + (f" ({ops[k]})" if k in ops else "")))
        frames = self.frames()
        depth = len(frames)
        for n, frame in enumerate(frames):
            depth -= 1
            tail = n + 1 < len(frames) and frames[n + 1].retp == frame.retp
            top = frame.top
            for index, words in reversed(list(frame.data.items())):
                top -= 1
                rows.append(WordRow(top, self.words[top], "control",
                                    f"{ControlWord.decode(self.words[top])} ({ops.get(index, '?')})"))
                for k in range(len(words) - 1, -1, -1):
                    top -= 1
                    rows.append(WordRow(top, words[k], "data", f"word {k} of ops {index}'s data"))
            c = frame.control
            rows.append(WordRow(top - 1, self.words[top - 1], "control",
                                f"{c}" + (f": {name_ops(c.bitmap)}" if c.type is FgraphType.BITMAP else "")))
            for k in range(FGRAPH_FRAME_OFFSET - 1, -1, -1):
                value = self.words[frame.offset + k]
                detail = {"ret": f"returns to {symbol(value)}"
                                 + (" (tail call: the same return slot as its caller's)" if tail else ""),
                          "func": symbol(value),
                          "calltime": f"{value} ns", "subtime": f"{value} ns",
                          "retp": f"return address slot {value:#x}"}[FRAME_FIELDS[k]]
                rows.append(WordRow(frame.offset + k, value, FRAME_FIELDS[k],
                                    f"depth {depth}: {detail}"))
        return rows

    def text(self, symbol: Callable[[int], str] = hex, ops: Mapping[int, str] | None = None) -> str:
        """:meth:`inspect` as an aligned table."""
        head = (f"curr_ret_stack {self.curr_ret_stack}  curr_ret_depth {self.curr_ret_depth}  "
                f"trace_overrun {self.trace_overrun}\n")
        return head + "".join(f"{r.index:4d}  {r.value:#018x}  {r.kind:<9} {r.detail}\n"
                              for r in self.inspect(symbol, ops))

    def __repr__(self) -> str:
        try:
            frames = f"{len(self.frames())} frames"
        except ShadowStackError as e:
            frames = f"corrupt ({e})"
        return (f"<ShadowStack curr_ret_stack={self.curr_ret_stack} curr_ret_depth={self.curr_ret_depth} "
                f"trace_overrun={self.trace_overrun}: {frames}>")

    def _repr_html_(self) -> str:
        esc = html.escape
        body = "".join(
            f"<tr><td>{r.index}</td><td><code>{r.value:#018x}</code></td><td>{esc(r.kind)}</td>"
            f"<td>{esc(r.detail)}</td></tr>" for r in self.inspect())
        return (f"<div><b>fgraph shadow stack</b>: curr_ret_stack {self.curr_ret_stack}, "
                f"curr_ret_depth {self.curr_ret_depth}, trace_overrun {self.trace_overrun}"
                f"<table><tr><th>word</th><th>value</th><th>kind</th><th>meaning</th></tr>{body}"
                f"</table></div>")
