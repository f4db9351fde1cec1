"""The fgraph shadow stack model (trace/fgraph.py): control words against the bit
positions of fgraph.c's macros, push/reserve/pop sequences against a plain list of
calls, overflow, and corrupted stacks."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftracelab.errors import ShadowStackError
from ftracelab.trace.fgraph import (
    FGRAPH_FRAME_OFFSET,
    SHADOW_STACK_MAX_OFFSET,
    SHADOW_STACK_OFFSET,
    ControlWord,
    FgraphType,
    ShadowStack,
)

control_words = st.one_of(
    st.builds(ControlWord.reserved, st.integers(0, 1023)),
    st.builds(ControlWord.make_bitmap, st.integers(0, 0xFFFF), st.integers(0, 1023)),
    st.builds(ControlWord.make_data, st.integers(0, 15), st.integers(1, 32), st.integers(0, 1023)),
)


@given(control_words)
def test_control_word_round_trip(word: ControlWord) -> None:
    assert ControlWord.decode(word.encode()) == word


@given(st.integers(0, (1 << 64) - 1))
def test_any_value_decodes_to_itself_or_is_refused(value: int) -> None:
    try:
        word = ControlWord.decode(value)
    except ValueError:
        return
    assert word.encode() == value


def test_bit_positions_are_the_macros_not_the_comment() -> None:
    """fgraph.c's comment says DATA size in 12-17 and index in 18-23; the macros put
    them at 12-16 and 17-20 (kernel-facts section 4)."""
    assert ControlWord.make_data(index=3, size=2, offset=8).encode() == (3 << 17) | (1 << 12) | (2 << 10) | 8
    assert ControlWord.make_bitmap(0b1001).encode() == (0b1001 << 12) | (1 << 10) | FGRAPH_FRAME_OFFSET
    assert ControlWord.make_data(index=15, size=32, offset=0).encode() == (15 << 17) | (31 << 12) | (2 << 10)
    with pytest.raises(ValueError, match="type 3"):
        ControlWord.decode(3 << 10)
    with pytest.raises(ValueError, match="bits above 20"):
        ControlWord.decode((2 << 10) | (1 << 21))


def test_sizes_of_6_12() -> None:
    assert FGRAPH_FRAME_OFFSET == 5                 # ret, func, calltime, subtime, retp
    assert SHADOW_STACK_MAX_OFFSET == 512 - (5 + 1 + 16)


wants = st.dictionaries(st.integers(0, 15), st.one_of(st.none(), st.binary(min_size=1, max_size=40)),
                        max_size=4)
calls = st.lists(st.tuples(st.booleans(), wants), max_size=160)   # (True: a call / False: a return, ...)


@settings(max_examples=150, deadline=None)
@given(calls)
def test_push_and_pop_match_a_list_of_calls(ops: list[tuple[bool, dict[int, bytes | None]]]) -> None:
    """Every frame reads back with its bitmap (bit 0 set) and its data; a call no ops
    wants or that does not fit leaves the stack as it was; full stacks count overruns."""
    stack, model, overruns = ShadowStack(), [], 0
    for n, (call, wants) in enumerate(ops):
        if call:
            before = (stack.curr_ret_stack, stack.curr_ret_depth)
            got = stack.enter(0x1000 + n, 0xFFFF_FFFF_8100_0000 + n, wants, calltime=n, retp=0x7000 + 8 * n)
            if got == 0:
                model.append((0x1000 + n, wants))
            else:
                assert got == -errno.EBUSY
                assert (stack.curr_ret_stack, stack.curr_ret_depth) == before
                if before[0] + FGRAPH_FRAME_OFFSET + 1 >= SHADOW_STACK_MAX_OFFSET:
                    overruns += 1
        elif model:
            frame = stack.pop()
            ret, wants = model.pop()
            assert frame.ret == ret
            assert frame.control.bitmap == sum(1 << i for i in wants) | 1
            for index, data in wants.items():
                if data:
                    raw = b"".join(w.to_bytes(8, "little") for w in frame.data[index])
                    assert raw[:len(data)] == data
            assert set(frame.data) == {i for i, d in wants.items() if d}
        assert len(stack.frames()) == len(model) == stack.curr_ret_depth + 1
        assert stack.curr_ret_stack < SHADOW_STACK_MAX_OFFSET
    assert stack.trace_overrun == overruns
    round_trip = ShadowStack.from_bytes(stack.to_bytes(), stack.curr_ret_stack, stack.curr_ret_depth)
    assert round_trip.frames() == stack.frames()


def test_overflow_returns_ebusy_and_counts() -> None:
    stack = ShadowStack()
    depth = 0
    while stack.enter(depth, depth, {1: None}) == 0:
        depth += 1
    assert depth == (SHADOW_STACK_MAX_OFFSET - 1) // (FGRAPH_FRAME_OFFSET + 1)
    assert stack.trace_overrun == 1 and stack.curr_ret_depth == depth - 1
    assert stack.enter(0, 0, {1: None}) == -errno.EBUSY and stack.trace_overrun == 2
    stack.pop()
    assert stack.enter(0, 0, {1: None}) == 0 and stack.trace_overrun == 2


def test_reserve_data_limits() -> None:
    stack = ShadowStack()
    assert stack.push_return_trace(1, 2) == FGRAPH_FRAME_OFFSET
    assert stack.reserve_data(0, 257) is None                    # > FGRAPH_MAX_DATA_SIZE
    at = stack.reserve_data(2, 256)
    assert at == FGRAPH_FRAME_OFFSET + 1
    top = ControlWord.decode(stack.words[stack.curr_ret_stack - 1])
    assert (top.type, top.index, top.size, top.offset) == (FgraphType.DATA, 2, 32, FGRAPH_FRAME_OFFSET + 33)


def test_corrupt_stacks_name_the_word() -> None:
    stack = ShadowStack()
    stack.enter(1, 2, {0: None})
    stack.words[FGRAPH_FRAME_OFFSET] = 3 << 10                  # type 3
    with pytest.raises(ShadowStackError, match="word 5"):
        stack.frames()
    stack.words[FGRAPH_FRAME_OFFSET] = ControlWord.make_bitmap(1, offset=40).encode()
    with pytest.raises(ShadowStackError, match="outside the stack"):
        stack.frames()
    with pytest.raises(ShadowStackError, match="empty"):
        ShadowStack().pop()
    with pytest.raises(ValueError, match="512 words"):
        ShadowStack(words=[0] * 10)


def test_text_view_golden(golden: Callable[[str, str], None]) -> None:
    stack = ShadowStack()
    stack.enter(0xFFFF_FFFF_8100_3EE9, 0xFFFF_FFFF_8100_3EE4, {0: None}, calltime=1000,
                retp=0xFFFF_C900_000E_3F58)
    stack.enter(0xFFFF_FFFF_8100_4011, 0xFFFF_FFFF_8100_2A04, {0: None, 3: bytes(range(1, 10))},
                calltime=1250, retp=0xFFFF_C900_000E_3F20)
    stack.words[SHADOW_STACK_OFFSET - 16 + 3] = 42               # ops 3's task variable
    names = {0xFFFF_FFFF_8100_3EE9: "ksys_read+0x29/0xb0", 0xFFFF_FFFF_8100_3EE4: "vfs_read",
             0xFFFF_FFFF_8100_4011: "vfs_read+0x31/0xe0", 0xFFFF_FFFF_8100_2A04: "rw_verify_area"}
    text = stack.text(lambda a: names.get(a, hex(a)), {0: "function_graph", 3: "my_gops"})
    golden("fgraph_shadow_stack.txt", text)
    assert "<table>" in stack._repr_html_()
