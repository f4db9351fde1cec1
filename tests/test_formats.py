"""ftracelab.formats: ring-buffer page decoding against the writer rules, format-file
and header_page parsing, kallsyms/saved_cmdlines, and open_trace() on a synthetic
tracefs directory."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftracelab.analysis import open_trace
from ftracelab.errors import TraceFormatError
from ftracelab.formats import (
    HeaderPage,
    RbEvent,
    decode_pages,
    encode_page,
    parse_format,
    parse_header_page,
    parse_kallsyms,
    parse_saved_cmdlines,
    rb_event_length,
)

DATA = 4080
PAGE = 4096

# ---------------------------------------------------------------------------
# Pages: encode_page() (the kernel's writer rules) → decode_pages() reads back.


@st.composite
def page_events(draw: st.DrawFn, max_events: int = 60) -> tuple[int, list[RbEvent], int | None, bool]:
    """A page's worth of events: small deltas, TIME_EXTEND-sized ones, absolute stamps,
    discards; a page time near the 59-bit boundary sometimes (TS_MSB fix-up)."""
    page_ts = draw(st.one_of(st.integers(0, 1 << 50), st.integers(1 << 59, 1 << 61),
                             st.sampled_from([(1 << 60) - 1000, (2 << 59) - 5, (3 << 59) - (1 << 28)])))
    events: list[RbEvent] = []
    ts, used = page_ts, 0
    for _ in range(draw(st.integers(0, max_events))):
        delta = draw(st.one_of(st.integers(0, 1000), st.integers(0, (1 << 27) - 1),
                               st.integers(1 << 27, 1 << 40)))
        size = draw(st.integers(0, 300))
        payload = draw(st.binary(min_size=size, max_size=size))
        absolute = draw(st.booleans()) if page_ts >= 1 << 59 or ts + delta < 1 << 59 else False
        ev = RbEvent(ts + delta, payload, discard=draw(st.integers(0, 7)) == 0, absolute=absolute)
        need = rb_event_length(size) + 8      # room for an extend/stamp too
        if used + need > DATA - 8:
            break
        used += need
        events.append(ev)
        if not (ev.discard and delta == 1 and not absolute):
            ts = ev.ts
    lost = draw(st.one_of(st.none(), st.just(-1), st.integers(0, 1 << 40)))
    return page_ts, events, lost, draw(st.booleans())


def expected(events: list[RbEvent]) -> list[tuple[int, bytes]]:
    out = []
    for ev in events:
        if ev.discard:
            continue
        body = rb_event_length(len(ev.payload)) - 4
        length = body if body <= 112 else body - 4
        out.append((ev.ts, ev.payload.ljust(length, b"\0")))
    return out


def decoded(pages: object, i0: int = 0, i1: int | None = None) -> list[tuple[int, bytes]]:
    from ftracelab.formats import DecodedPages
    assert isinstance(pages, DecodedPages)
    return [(int(pages.ts[i]), pages.payload(i)) for i in range(i0, len(pages) if i1 is None else i1)]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(page_events())
def test_page_round_trip(case: tuple[int, list[RbEvent], int | None, bool]) -> None:
    page_ts, events, lost, tail = case
    page = encode_page(events, page_ts=page_ts, lost=lost, tail_padding=tail)
    assert len(page) == PAGE
    pages = decode_pages(page, PAGE, cpu=3)
    assert decoded(pages) == expected(events)
    assert (pages.cpu == 3).all() and (pages.page == 0).all()
    commit = struct.unpack_from("<Q", page, 8)[0] & ((1 << 27) - 1)
    room = DATA - commit >= 8
    want = 0 if lost is None else lost if lost >= 0 and room else -1
    assert pages.lost.tolist() == [want]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(page_events(max_events=16), min_size=1, max_size=6))
def test_many_pages_decode_in_lock_step(cases: list[tuple[int, list[RbEvent], int | None, bool]]) -> None:
    blob = b"".join(encode_page(ev, page_ts=ts, lost=lost, tail_padding=tail)
                    for ts, ev, lost, tail in cases)
    cpus = np.arange(len(cases)) % 2
    pages = decode_pages(blob, PAGE, cpu=cpus)
    want = [(p, e) for p, (_, ev, _, _) in enumerate(cases) for e in expected(ev)]
    assert decoded(pages) == [e for _, e in want]
    assert pages.page.tolist() == [p for p, _ in want]
    assert pages.cpu.tolist() == [int(cpus[p]) for p, _ in want]
    assert all(0 <= o - p * PAGE - 16 <= DATA for o, p in zip(pages.payload_offset, pages.page, strict=True))


PageCase = tuple[int, list[RbEvent], int | None, bool]   # page_ts, events, lost, tail padding


@st.composite
def uniform_page_events(draw: st.DrawFn) -> PageCase:
    """Events of one small payload length and no time extends: a page decode_pages()
    reads as a 2-D array instead of walking it (the function tracer's pages)."""
    size = draw(st.integers(1, 112))
    count = draw(st.integers(1, DATA // rb_event_length(size)))
    ts = draw(st.integers(0, 1 << 50))
    events = []
    for _ in range(count):
        ts += draw(st.integers(0, (1 << 27) - 1))
        events.append(RbEvent(ts, draw(st.binary(min_size=size, max_size=size))))
    return events[0].ts, events, None, draw(st.booleans())


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(uniform_page_events(), page_events(max_events=16)), min_size=1, max_size=8))
def test_uniform_pages_decode_like_walked_ones(cases: list[PageCase]) -> None:
    """Pages of one event length (decoded without the walk) mixed with any others read back
    exactly and in page order, and each page reads the same alone."""
    pages_bytes = [encode_page(ev, page_ts=ts, lost=lost, tail_padding=tail) for ts, ev, lost, tail in cases]
    pages = decode_pages(b"".join(pages_bytes), PAGE)
    want = [(p, e) for p, (_, ev, _, _) in enumerate(cases) for e in expected(ev)]
    assert decoded(pages) == [e for _, e in want]
    assert pages.page.tolist() == [p for p, _ in want]
    assert pages.page_events.tolist() == [len(expected(ev)) for _, ev, _, _ in cases]
    alone = [decoded(decode_pages(b, PAGE)) for b in pages_bytes]
    assert decoded(pages) == [e for one in alone for e in one]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1024), st.integers(0, DATA // 4), st.integers(0, 3), st.integers(0, (1 << 64) - 1))
def test_garbage_pages_decode_or_raise(noise: bytes, words: int, flags: int, page_ts: int) -> None:
    """Random data never hangs or crashes the decoder: events stay inside the commit."""
    page = (struct.pack("<QQ", page_ts, (words * 4) | (flags << 30)) + noise).ljust(PAGE, b"\0")[:PAGE]
    try:
        pages = decode_pages(page, PAGE)
    except TraceFormatError as e:
        assert 0 <= e.offset < PAGE
        return
    end = pages.payload_offset + pages.payload_len
    assert ((pages.payload_offset >= 16) & (end <= 16 + words * 4)).all()


def test_time_extend_and_time_stamp_words() -> None:
    """The encoder's words are the kernel's: extend = (delta & TS_MASK) << 5 | 30, array[0] = delta >> 27."""
    delta = (5 << 27) + 77
    page = encode_page([RbEvent(1000, b"abcd"), RbEvent(1000 + delta, b"efgh")], page_ts=1000)
    w = struct.unpack_from("<5I", page, 16)
    assert w[0] == 1 and w[1] == int.from_bytes(b"abcd", "little")        # type_len 1, delta 0
    assert w[2] == (77 << 5) | 30 and w[3] == 5 and w[4] == 1            # extend, then delta 0
    abs_page = encode_page([RbEvent((1 << 59) + 3, b"x", absolute=True)], page_ts=1 << 59)
    w = struct.unpack_from("<2I", abs_page, 16)
    assert w[0] == (3 << 5) | 31 and w[1] == 0                          # low 59 bits only
    assert decode_pages(abs_page).ts.tolist() == [(1 << 59) + 3]          # TS_MSB restored


def test_event_lengths_match_rb_calculate_event_length() -> None:
    # payload -> bytes on the page (x86-64): 0..4 -> 8; 5..8 -> 16 (12 is bumped); 112 -> 116; 113 -> 124
    assert [rb_event_length(n) for n in (0, 1, 4, 5, 8, 9, 112, 113, 200)] == \
        [8, 8, 8, 16, 16, 16, 116, 124, 208]


def _raw_page(words: list[int], commit: int, page_ts: int = 0) -> bytes:
    return (struct.pack("<QQ", page_ts, commit) + struct.pack(f"<{len(words)}I", *words)).ljust(PAGE, b"\0")


@pytest.mark.parametrize(("blob", "offset"), [
    (b"\0" * (PAGE + 100), PAGE),                                   # trailing partial page
    (_raw_page([], DATA + 4), 8),                                   # commit beyond the page
    (_raw_page([], 6), 8),                                          # commit not 4-aligned
    (_raw_page([0, 1000], 8), 16),                                  # type_len 0 longer than commit
    (_raw_page([1, 0, 0, 2], 16), 20 + 4),                          # second event overruns
    (_raw_page([(1 << 5) | 29], 4), 16),                            # padding without array[0]
    (_raw_page([0, 2, 0], 8), 16),                                  # array[0] < 4
    (_raw_page([], DATA | (3 << 30)), 8),                           # lost count with no room
    (PAGE * b"\0" + _raw_page([30, 0, 1], 12), PAGE + 16 + 8),      # second page, after an extend
])
def test_malformed_pages_name_the_offset(blob: bytes, offset: int) -> None:
    with pytest.raises(TraceFormatError) as info:
        decode_pages(blob, PAGE, source="cpu0")
    assert info.value.offset == offset
    assert f"offset {offset:#x}" in str(info.value) and "cpu0" in str(info.value)


def test_null_padding_ends_page_and_lost_flags() -> None:
    page = _raw_page([1, 7, 29, 1, 9], 20 | (1 << 31), page_ts=50)      # null padding after 1 event
    pages = decode_pages(page)
    assert pages.ts.tolist() == [50] and pages.lost.tolist() == [-1]
    assert pages.lost_by_cpu() == {0: -1}
    assert len(decode_pages(b"")) == 0


# ---------------------------------------------------------------------------
# Format files.

FUNCTION = """name: function
ID: 1
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;
\tfield:unsigned long parent_ip;\toffset:16;\tsize:8;\tsigned:0;

print fmt: " %ps <-- %ps", (void *)REC->ip, (void *)REC->parent_ip
"""
COMMON = FUNCTION.split("\n\n")[0].split("\n", 3)[3]


def fmt_text(name: str, event_id: int, fields: str) -> str:
    return f"name: {name}\nID: {event_id}\nformat:\n{COMMON}\n\n{fields}\n\nprint fmt: \"x\"\n"


@pytest.mark.parametrize(("decl", "want"), [
    ("unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;", ("unsigned long", "ip", 8, 8, False, None, False)),
    ("unsigned long caller[8];\toffset:16;\tsize:64;\tsigned:0;",
     ("unsigned long", "caller", 16, 64, False, 8, False)),
    ("char buf[];\toffset:16;\tsize:0;\tsigned:0;", ("char", "buf", 16, 0, False, 0, False)),
    ("__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;",
     ("char", "filename", 8, 4, False, None, True)),
    ("const char * filename;\toffset:24;\tsize:8;\tsigned:0;",
     ("const char *", "filename", 24, 8, False, None, False)),
    ("char comm[TASK_COMM_LEN];\toffset:8;\tsize:16;\tsigned:0;", ("char", "comm", 8, 16, False, 16, False)),
    ("long ret;\toffset:16;\tsize:8;\tsigned:1;", ("long", "ret", 16, 8, True, None, False)),
])
def test_format_fields(decl: str, want: tuple[object, ...]) -> None:
    fmt = parse_format(fmt_text("ev", 42, f"\tfield:{decl}"), system="sys")
    f = fmt.fields[0]
    assert (f.type, f.name, f.offset, f.size, f.signed, f.array_len, f.data_loc) == want
    assert (fmt.name, fmt.id, fmt.system, len(fmt.common_fields)) == ("ev", 42, "sys", 4)


def test_function_format() -> None:
    fmt = parse_format(FUNCTION)
    assert [f.name for f in fmt.all_fields] == ["common_type", "common_flags", "common_preempt_count",
                                                "common_pid", "ip", "parent_ip"]
    assert fmt.print_fmt.startswith('" %ps <-- %ps"') and fmt.fixed_size == 24
    assert fmt.field("ip").size == 8 and not fmt.field("ip").is_array


@pytest.mark.parametrize(("text", "at"), [
    ("ID: 1\nformat:\n", "END"),                                           # no name
    ("name: x\nformat:\n", "END"),                                          # no ID
    ("name: x\nID: abc\nformat:\n", "abc"),                                  # bad ID
    ("name: x\nID: 1\n\tfield:int a;\toffset:0;\tsize:4;\tsigned:1;\n", "\tfield"),  # before format:
    ("name: x\nID: 1\nformat:\n\tfield:int a;\toffset:0;\tsigned:1;\n", "\tfield"),  # no size
    ("name: x\nID: 1\nformat:\n\tfield:int a;\toffset:99999999;\tsize:4;\tsigned:1;\n", "99999999"),
    ("name: x\nID: 1\nformat:\nbogus line\n", "bogus"),
    ("name: x\nID: 1\nformat:\n\tfield:int ;\toffset:0;\tsize:4;\tsigned:1;\n", "int ;"),
    ("name: x\nID: 1\nformat:\n\tfield:int a;\toffset:0;\tsize:0;\tsigned:1;\n", "0;\tsigned"),
])
def test_malformed_format_names_the_offset(text: str, at: str) -> None:
    with pytest.raises(TraceFormatError) as info:
        parse_format(text, source="events/x/format")
    assert info.value.offset == (len(text) if at == "END" else text.index(at))
    assert "events/x/format" in str(info.value)


HEADER_PAGE = """\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;
\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;
\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;
\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;
"""


def test_header_page() -> None:
    hp = parse_header_page(HEADER_PAGE)
    assert hp == HeaderPage.default() and hp.page_size == 4096
    big = parse_header_page(HEADER_PAGE.replace("size:4080", "size:16368"))
    assert big.page_size == 16384


@pytest.mark.parametrize(("text", "at"), [
    (HEADER_PAGE.replace("\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;\n", ""), "END"),
    (HEADER_PAGE.replace("size:4080", "size:4077"), "\tfield: char data"),
    (HEADER_PAGE.replace("local_t commit;\toffset:8;\tsize:8", "local_t commit;\toffset:8;\tsize:4"),
     "\tfield: local_t"),
    (HEADER_PAGE.replace("offset:16;", "offset:;"), "\tfield: char data"),
])
def test_malformed_header_page(text: str, at: str) -> None:
    with pytest.raises(TraceFormatError) as info:
        parse_header_page(text)
    assert info.value.offset == (len(text) if at == "END" else text.index(at))


def test_kallsyms_and_cmdlines() -> None:
    syms = parse_kallsyms("0000000000000000 A fixed_percpu_data\n"
                          "ffffffff81000000 T _stext\nffffffff81000000 T startup_64\n"
                          "ffffffff81000100 t helper\nffffffffc0000000 t modfn\t[mod]\n")
    names = syms.lookup(np.array([0xFFFFFFFF81000010, 0xFFFFFFFF81000100, 0xFFFFFFFFC0000008, 5], np.uint64))
    assert names.tolist() == ["_stext", "helper", "modfn", "0x5"]      # first alias wins; %ps hex
    with pytest.raises(TraceFormatError) as info:
        parse_kallsyms("ffffffff81000000 T a\nzzzz T b\n")
    assert info.value.offset == 21
    assert parse_saved_cmdlines("1 init\n42 my prog\n") == {1: "init", 42: "my prog"}
    with pytest.raises(TraceFormatError):
        parse_saved_cmdlines("1 init\nx y\n")


# ---------------------------------------------------------------------------
# open_trace() on a synthetic tracefs directory.

STACK = fmt_text("kernel_stack", 4, "\tfield:int size;\toffset:8;\tsize:4;\tsigned:1;\n"
                 "\tfield:unsigned long caller[8];\toffset:16;\tsize:64;\tsigned:0;")
EXEC = fmt_text("sched_process_exec", 303,
                "\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;\n"
                "\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;\n"
                "\tfield:pid_t old_pid;\toffset:16;\tsize:4;\tsigned:1;")


def entry(event_id: int, pid: int, flags: int = 0, preempt: int = 0) -> bytes:
    return struct.pack("<HBBi", event_id, flags, preempt, pid)


def make_tracedir(root: Path) -> None:
    (root / "events" / "ftrace" / "function").mkdir(parents=True)
    (root / "events" / "ftrace" / "kernel_stack").mkdir(parents=True)
    (root / "events" / "sched" / "sched_process_exec").mkdir(parents=True)
    (root / "events" / "header_page").write_text(HEADER_PAGE)
    (root / "events" / "ftrace" / "function" / "format").write_text(FUNCTION)
    (root / "events" / "ftrace" / "kernel_stack" / "format").write_text(STACK)
    (root / "events" / "sched" / "sched_process_exec" / "format").write_text(EXEC)
    fn = entry(1, 7, 1, 2) + struct.pack("<QQ", 0xFFFFFFFF81000010, 0xFFFFFFFF81000104)
    stack = entry(4, 7) + struct.pack("<i4x3Q", 24, 0xFFFFFFFF81000100, 0xFFFFFFFF81000000, 1)
    name = b"/bin/sh\0"
    exe = entry(303, 9) + struct.pack("<Iii", (len(name) << 16) | 20, 9, 8) + name
    cpu0 = [RbEvent(1_000, fn), RbEvent(1_500, stack), RbEvent(3_000 + (1 << 30), entry(77, 0))]
    cpu1 = [RbEvent(2_000, exe)]
    for cpu, evs, lost in ((0, cpu0, None), (1, cpu1, 5)):
        (root / "per_cpu" / f"cpu{cpu}").mkdir(parents=True)
        (root / "per_cpu" / f"cpu{cpu}" / "trace_pipe_raw").write_bytes(encode_page(evs, lost=lost))
    (root / "per_cpu" / "cpu2").mkdir()                        # a CPU with no data file
    (root / "per_cpu" / "cpu3").mkdir()
    (root / "per_cpu" / "cpu3" / "trace_pipe_raw").write_bytes(b"")
    (root / "kallsyms.gz").write_bytes(gzip.compress(
        b"ffffffff81000000 T _stext\nffffffff81000100 t helper\n"))
    (root / "saved_cmdlines").write_text("7 sh\n")


def test_open_trace_synthetic(tmp_path: Path) -> None:
    make_tracedir(tmp_path)
    trace = open_trace(tmp_path)
    df = trace.df_events()
    assert list(df.columns[:7]) == ["ts", "cpu", "pid", "comm", "event", "common_flags",
                                    "common_preempt_count"]
    assert df["ts"].tolist() == [1_000, 1_500, 2_000, 3_000 + (1 << 30)]
    assert df["cpu"].tolist() == [0, 0, 1, 0] and df["pid"].tolist() == [7, 7, 9, 0]
    assert df["comm"].astype(str).tolist() == ["sh", "sh", "<...>", "<idle>"]
    assert df["event"].astype(str).tolist() == ["function", "kernel_stack", "sched_process_exec", "<id 77>"]
    assert str(df["ip"].dtype) == "UInt64" and df["ip"][0] == 0xFFFFFFFF81000010
    assert df["func"].astype(str).tolist()[0] == "_stext" and df["parent"].astype(str)[0] == "helper"
    assert df["caller"][1] == (0xFFFFFFFF81000100, 0xFFFFFFFF81000000, 1)    # record shorter than [8]
    assert df["filename"][2] == "/bin/sh" and df["field_pid"][2] == 9 and df["old_pid"][2] == 8
    assert (df["common_flags"][0], df["common_preempt_count"][0]) == (1, 2)
    assert str(df["field_pid"].dtype) == "Int32" and df["size"][1] == 24
    assert trace.lost_events == {0: 0, 1: 5, 3: 0} == df.attrs["lost_events"]
    assert "lost" in trace._repr_html_() and "sched_process_exec" in trace._repr_html_()


def test_open_trace_errors_name_file_and_offset(tmp_path: Path) -> None:
    make_tracedir(tmp_path)
    raw = tmp_path / "per_cpu" / "cpu1" / "trace_pipe_raw"
    page = bytearray(raw.read_bytes())
    page[8:16] = struct.pack("<Q", 5000)
    raw.write_bytes(bytes(page))
    with pytest.raises(TraceFormatError) as info:
        open_trace(tmp_path)
    assert info.value.offset == 8 and "cpu1" in str(info.value)
    raw.write_bytes(bytes(page[:100]))
    with pytest.raises(TraceFormatError) as info:
        open_trace(tmp_path)
    assert info.value.offset == 0
    (tmp_path / "events" / "ftrace" / "function" / "format").write_text("name: function\nID: x\n")
    with pytest.raises(TraceFormatError, match="function/format"):
        open_trace(tmp_path)


@given(st.binary(min_size=16, max_size=256).filter(lambda b: len(b) % 4 == 0),
       st.lists(st.integers(0, 63), min_size=1, max_size=20), st.sampled_from([1, 2, 4, 8]))
def test_scalar_gathers_match_struct(data: bytes, slots: list[int], size: int) -> None:
    """The aligned fast paths of the field reader (u64 views at offsets 0 and 4,
    mixed) read what struct does; unaligned starts take the general path."""
    from ftracelab.analysis.event_fields import scalar as _scalar

    buf = np.frombuffer(data, dtype=np.uint8)
    fmt = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}[size]
    for align in (4, 1):
        starts = np.array([(s * align) % (len(data) - size + 1) // align * align for s in slots],
                          dtype=np.int64)
        got = _scalar(buf, starts, size, np.dtype(fmt)).tolist()
        assert got == [struct.unpack_from(fmt, data, int(s))[0] for s in starts]
