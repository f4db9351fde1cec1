"""formats/print_fmt.py: print fmt parsing and evaluation, with libc's snprintf as the
oracle for the integer conversions, and the kernel's helpers."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftracelab.formats.print_fmt import PrintFmtError, compile_print_fmt, printf

LIBC = ctypes.CDLL(ctypes.util.find_library("c"))


def c_snprintf(fmt: str, value: int) -> str:
    buf = ctypes.create_string_buffer(256)
    LIBC.snprintf(buf, 256, fmt.encode(), ctypes.c_longlong(value))
    return buf.value.decode()


@given(flags=st.sampled_from(["", "-", "0", "#", "+", " ", "-#", "0#"]),
       width=st.sampled_from(["", "1", "5", "12"]),
       prec=st.sampled_from(["", ".0", ".3"]),
       length=st.sampled_from(["", "l", "ll", "h", "hh"]),
       conv=st.sampled_from(list("diuxXo")),
       value=st.integers(-(1 << 63), (1 << 64) - 1))
def test_integer_conversions_match_libc(flags: str, width: str, prec: str, length: str, conv: str,
                                        value: int) -> None:
    if "0" in flags and prec:               # C ignores 0 with a precision; keep cases unambiguous
        flags = flags.replace("0", "")
    spec = f"%{flags}{width}{prec}{length}{conv}"
    as_c = value - (1 << 64) if value >= 1 << 63 else value
    assert printf(f"<{spec}>", [value]) == f"<{c_snprintf(spec, as_c)}>"


def test_sched_switch_and_helpers() -> None:
    pf = compile_print_fmt(
        '"prev_state=%s%s ==> next=%s", (REC->prev_state & 0xff) ? __print_flags(REC->prev_state & 0xff, '
        '"|", { 0x01, "S" }, { 0x02, "D" }) : "R", REC->prev_state & 0x100 ? "+" : "", REC->next_comm')
    assert pf.fields() == {"prev_state", "next_comm"}
    assert pf.format({"prev_state": 3, "next_comm": "cat"}) == "prev_state=S|D ==> next=cat"
    assert pf.format({"prev_state": 0x100, "next_comm": b"x\0junk"}) == "prev_state=R+ ==> next=x"
    assert pf.format({"prev_state": 0x41, "next_comm": ""}) == "prev_state=S|0x40 ==> next="
    sym = compile_print_fmt('"%s %ps %pS %d", __print_symbolic(REC->v, { 1, "ONE" }, { 2, "TWO" }), '
                            '(void *)REC->ip, (void *)REC->ip, -(int)REC->v')
    assert sym.format({"v": 2, "ip": 0x1000}, lambda a, off: f"f+{a:x}" if off else "f") == "TWO f f+1000 -2"
    assert sym.format({"v": 7, "ip": 0}, None).startswith("0x7 0x0")


def test_c_expressions() -> None:
    pf = compile_print_fmt('"%d %d %d %u %lx %d", REC->a / 3, REC->a % 3, 1 << 4 | 1, (u8)REC->b, '
                           '(unsigned long)REC->b, REC->a < 0 && REC->b')
    assert pf.format({"a": -7, "b": -1}) == "-2 -1 17 255 ffffffffffffffff 1"
    arr = compile_print_fmt('"%s %s %d", __print_hex(REC->buf, 3), __print_array(REC->arr, 2, 4), '
                            '__get_dynamic_array_len(name)')
    assert arr.format({"buf": b"\x01\xab\xff\x00", "arr": (1, 258, 3), "name": b"abcd"}) == \
        "01 ab ff {0x1,0x102} 4"
    assert compile_print_fmt('"a" "b%c" "c", \'x\'').format({}) == "abxc"


@pytest.mark.parametrize("text", ['REC->x', '"unterminated', '"%d", (', '"%d", REC->x ?'])
def test_bad_print_fmts_name_the_offset(text: str) -> None:
    with pytest.raises(PrintFmtError) as exc:
        compile_print_fmt(text)
    assert exc.value.offset >= 0
