"""The ring-buffer view, headless: page slots with head/tail/commit as the
native writer moves them, and pages decoded record by record (data events,
end-of-page padding, time extends, lost-event marks) in agreement with the
vectorised reader and ``lab.trace().df_events()``."""

from __future__ import annotations

import struct

import pytest

from ftracelab import Lab
from ftracelab.formats.ring_buffer_page import RbEvent, decode_pages, encode_page
from ftracelab.widgets.ring_buffer_view import (
    PageSlot,
    RbRecord,
    RingBufferView,
    format_page,
    slot_window,
    walk_page,
)

PAGE = 4096


def _function_tracer(lab: Lab, glob: str) -> None:
    lab.tracefs.write("set_ftrace_filter", glob)
    lab.tracefs.write("current_tracer", "function")


def _small_ring(overwrite: bool) -> Lab:
    lab = Lab(cpus=2, seed=0)
    lab.tracefs.write("buffer_size_kb", "8")                 # 3 pages per CPU
    lab.tracefs.write("options/overwrite", "1" if overwrite else "0")
    _function_tracer(lab, "*")
    return lab


def _data(view: RingBufferView) -> list[RbRecord]:
    return [r for r in view.events() if r.is_data]


def _roles(view: RingBufferView) -> dict[str, int]:
    return {role: s.index for s in view.rows() for role in s.roles}


def _slot_div(view: RingBufferView, index: int) -> str:
    html = str(view.slots_html.value)
    start = html.index(f"data-page='{index}'")
    return html[html.rindex("<div", 0, start):html.index("</div>", start)]


def _check_layout(records: list[RbRecord], size: int) -> None:
    """Records tile the committed bytes from offset 16, with no gap."""
    at = 16
    for r in records:
        assert r.offset == at
        at += r.length
    assert at == 16 + size


@pytest.fixture
def cat_view() -> RingBufferView:
    lab = Lab(cpus=2, seed=0)
    _function_tracer(lab, "vfs_*")
    view = RingBufferView(lab)
    lab.run("cat")
    view.refresh()
    return view


def test_an_empty_ring_starts_at_page_0() -> None:
    view = RingBufferView(Lab(cpus=2, seed=0))
    assert view.page == 0 and view.events() == [] and view.status.value == ""
    assert _roles(view) == {"head": 0, "commit": 0, "tail": 0}
    assert "(no events on this page)" in view.dump_text()


def test_cat_shows_head_and_tail_on_page_0(cat_view: RingBufferView) -> None:
    view, lab = cat_view, cat_view.lab
    p = view.pointers()
    assert (p["head"], p["tail"], p["commit"]) == (0, 0, 0) and p["nr_pages"] > view.max_slots
    assert _roles(view) == {"head": 0, "commit": 0, "tail": 0}
    assert view.page == 0 and view.status.value == ""
    slot = view.slot(0)
    assert slot.roles == ("head", "commit", "tail") and slot.in_use
    assert "rb-head" in _slot_div(view, 0) and "rb-tail" in _slot_div(view, 0)
    assert len(view.rows()) <= view.max_slots                # a window, not 354 boxes
    last = p["nr_pages"] - 1                                # the page before the head
    assert [s.index for s in view.rows()] == [last, 0, 1] and f"<b>{last}</b>" in _slot_div(view, last)

    df = lab.trace().df_events()
    df = df[df["cpu"] == 0]
    data = _data(view)
    assert len(data) == len(df) == slot.entries == 7
    assert view.walk is not None and view.walk.header.size == slot.write == 7 * 28
    _check_layout(view.events(), view.walk.header.size)
    for r, (_, row) in zip(data, df.iterrows(), strict=True):
        assert (r.type_len, r.length, r.kind, r.event) == (6, 28, "data", "function")
        assert r.fields["common_type"] == 1
        assert r.fields["ip"] == row["ip"] and r.fields["parent_ip"] == row["parent_ip"]
        assert r.fields["common_pid"] == row["pid"] and r.ts == row["ts"]
        assert r.symbols["ip"] == row["func"] and r.symbols["parent_ip"] == row["parent"]
        assert r.payload[8:16] == struct.pack("<Q", int(row["ip"]))
    assert data[0].time_delta == 0 and data[0].ts == view.walk.header.time_stamp
    text = view.dump_text()
    assert "time_stamp" in text and "commit      0xc4 = 196 bytes" in text
    assert "vfs_read" in text and "<ksys_read>" in text and "vfs_read" in view.dump.value


def test_walk_agrees_with_decode_pages() -> None:
    lab = _small_ring(overwrite=True)
    lab.run("getpid", loops=200)
    rb = lab.trace_array.buffer
    for cpu in range(lab.cpus):
        for i in rb.page_indexes(cpu):
            raw = rb.read_page(cpu, i)
            walk = walk_page(raw)
            assert walk.error is None
            _check_layout(list(walk.records), walk.header.size)
            ref = decode_pages(raw, cpu=cpu)
            data = walk.data()
            assert [r.ts for r in data] == ref.ts.tolist()
            assert [r.payload_offset for r in data] == ref.payload_offset.tolist()
            assert [r.payload for r in data] == [ref.payload(k) for k in range(len(ref))]


def test_overwrite_moves_the_head_and_the_view_marks_it() -> None:
    lab = _small_ring(overwrite=True)
    view = RingBufferView(lab)
    heads = []
    for _ in range(4):
        lab.run("getpid", loops=100)
        view.refresh()
        heads.append(_roles(view)["head"])
    assert len(set(heads)) > 1                              # the head moved between runs
    lab.run("getpid", loops=400)
    view.refresh()
    p, s = view.pointers(), lab.trace_array.buffer.stats(0)
    assert p["nr_pages"] == 3 and len(view.rows()) == 3     # a small ring: every page shown
    assert s.overrun > 0 and s.dropped_events == 0
    assert p["head"] == (p["tail"] + 1) % 3                 # the ring is full: head just past tail
    assert _roles(view) == {"head": p["head"], "commit": p["tail"], "tail": p["tail"]}
    assert "rb-head" in _slot_div(view, p["head"])
    assert all(s.in_use for s in view.rows())
    oldest = min(view.rows(), key=lambda slot: slot.time_stamp)
    assert oldest.index == p["head"]                        # the head page holds the oldest data
    # the events on the head page are the first ones the trace shows
    view.head_button.click()
    assert view.page == p["head"]
    df = lab.trace().df_events()
    df = df[df["cpu"] == 0]
    data = _data(view)
    assert [r.fields["ip"] for r in data] == df["ip"].iloc[:len(data)].tolist()
    assert data[0].ts == df["ts"].iloc[0]
    assert sum(slot.entries for slot in view.rows()) == s.entries == len(df)


def test_producer_consumer_keeps_the_head() -> None:
    lab = _small_ring(overwrite=False)
    view = RingBufferView(lab)
    lab.run("getpid", loops=400)
    view.refresh()
    p, s = view.pointers(), lab.trace_array.buffer.stats(0)
    assert s.dropped_events > 0 and s.overrun == 0
    assert (p["head"], p["tail"]) == (0, 2)
    assert _roles(view)["head"] == 0 and "rb-head" in _slot_div(view, 0)
    assert "producer/consumer" in view.summary.value
    df = lab.trace().df_events()
    assert _data(view)[0].ts == df[df["cpu"] == 0]["ts"].iloc[0]


def test_padding_at_the_end_of_a_full_page() -> None:
    lab = _small_ring(overwrite=True)
    view = RingBufferView(lab)
    lab.run("getpid", loops=100)
    view.refresh()
    p = view.pointers()
    assert p["tail"] != p["head"]
    view.page = p["head"]                                   # full: the tail moved past it
    slot = view.slot(p["head"])
    assert slot.write == 4080 and 0 < slot.real_end < 4080
    last = view.events()[-1]
    assert last.kind in ("padding", "discard") and last.type_len == 29 and last.time_delta == 1
    assert last.offset == 16 + slot.real_end and last.offset + last.length == PAGE
    assert last.array0 == 4080 - slot.real_end - 4 and last.payload == b""
    assert view.events()[-2].is_data and len(_data(view)) == slot.entries
    assert "end-of-page filler" in view.dump_text()


def test_time_extend_between_far_apart_events() -> None:
    lab = Lab(cpus=2, seed=0)
    _function_tracer(lab, "hrtimer_wakeup")
    view = RingBufferView(lab)
    lab.run("sleep", loops=3, sleep_ns=200_000_000)
    df = lab.trace().df_events()
    cpu = int(df["cpu"].iloc[0])
    view.cpu_dropdown.value = cpu
    assert view.cpu == cpu and view.page == view.pointers()["head"]
    kinds = [r.kind for r in view.events()]
    assert kinds == ["data", "time extend", "data", "time extend", "data"]
    ext = view.events()[1]
    assert ext.length == 8 and ext.array0 is not None
    assert (ext.array0 << 27) + ext.time_delta > 1 << 27
    data = _data(view)
    assert [r.ts for r in data] == df["ts"].tolist()
    assert [r.symbols["ip"] for r in data] == ["hrtimer_wakeup"] * 3
    assert all(r.time_delta == 0 for r in data[1:])        # the extend carries the delta
    assert "time extend" in view.dump_text()


def test_lost_events_in_a_consumed_page() -> None:
    lab = _small_ring(overwrite=True)
    lab.run("getpid", loops=400)
    overrun = lab.trace_array.buffer.stats(0).overrun
    raw = lab.tracefs.read("per_cpu/cpu0/trace_pipe_raw")
    assert isinstance(raw, bytes) and raw
    walk = walk_page(raw[:PAGE])
    h = walk.header
    assert h.missed_events and h.lost is not None
    assert h.lost == (overrun if h.missed_stored else -1)
    assert h.lost == int(decode_pages(raw[:PAGE]).lost[0])
    assert "RB_MISSED_EVENTS" in format_page(walk, raw[:PAGE])
    second = walk_page(raw[PAGE:2 * PAGE]).header
    assert not second.missed_events and second.lost is None


def test_hand_made_page_records() -> None:
    events = [RbEvent(1000, b"\x01\x00" + bytes(22)), RbEvent(1500, bytes(20), discard=True),
              RbEvent(1700, bytes(130)), RbEvent(1 << 40, bytes(8), absolute=True),
              RbEvent((1 << 40) + (1 << 30), bytes(8))]
    raw = encode_page(events, lost=5)
    walk = walk_page(raw)
    assert walk.error is None
    assert [r.kind for r in walk.records] == ["data", "discard", "data", "time stamp", "data",
                                              "time extend", "data"]
    big = walk.records[2]
    assert big.type_len == 0 and big.array0 == 136 and len(big.payload) == 132
    assert [r.ts for r in walk.data()] == decode_pages(raw).ts.tolist()
    assert walk.header.missed_stored and walk.header.lost == 5
    text = format_page(walk, raw)
    assert "lost events: 5" in text and "RB_MISSED_STORED" in text
    end = 16 + walk.header.size + 8                          # the count sits before the free space
    assert f"{end:#05x}  " + " " * 47 + f"  end of commit: {PAGE - end} bytes unused" in text
    padded = walk_page(encode_page(events[:1], tail_padding=True))
    assert [r.kind for r in padded.records] == ["data", "padding"]


def test_a_broken_page_is_reported_in_the_status(cat_view: RingBufferView) -> None:
    lab = cat_view.lab
    addr = lab.trace_array.buffer.page_info(0, 0)["page"]
    lab.machine.write(addr + 16 + 28, struct.pack("<II", 0, 4000))   # 2nd event: type_len 0, huge
    cat_view.refresh_button.click()
    assert "page walk stopped" in cat_view.status.value and "runs past" in cat_view.status.value
    assert len(cat_view.events()) == 1 and "ERROR" in cat_view.dump_text()
    assert walk_page(bytes(8) + struct.pack("<q", 4081) + bytes(PAGE - 16)).error is not None


def test_window_and_selection() -> None:
    assert slot_window(3, 2, 1) == [0, 1, 2]
    assert slot_window(354, 0, 0, 16) == [353, 0, 1]
    w = slot_window(354, 0, 100, 10)
    assert w[0] == 353 and None in w and w[-1] == 101 and 100 in w
    assert len([i for i in w if i is not None]) == 10
    assert slot_window(354, 0, 0, 16, extra=[200]) == [353, 0, 1, None, 200]
    assert slot_window(354, 350, 2, 16) == [349, 350, 351, 352, 353, 0, 1, 2, 3]
    full = slot_window(354, 10, 9, 16)                       # a full ring: tail just before head
    shown = [i for i in full if i is not None]
    assert len(shown) == len(set(shown)) == 14 and shown[:2] == [9, 10] and shown[-1] == 8

    lab = Lab(cpus=2, seed=0)
    _function_tracer(lab, "*")
    lab.run("getpid", loops=400)
    view = RingBufferView(lab, max_slots=8)
    p = view.pointers()
    assert p["tail"] + 3 > 8 and len(view.rows()) == 8 and "rb-gap" in view.slots_html.value
    view.tail_button.click()
    assert view.page == p["tail"] and "rb-selected" in _slot_div(view, p["tail"])
    view.page = 200                                          # outside head..tail: stale
    assert 200 in [s.index for s in view.rows()] and not view.slot(200).in_use
    assert "outside head..tail" in view.dump_text()
    view.page = 10**6
    assert view.page == p["nr_pages"] - 1
    assert isinstance(view.rows()[0], PageSlot)
    with pytest.raises(ValueError):
        RingBufferView(lab, cpu=2)


def test_resize_reselects_the_head(cat_view: RingBufferView) -> None:
    cat_view.page = 5
    cat_view.lab.tracefs.write("buffer_size_kb", "8")
    cat_view.refresh()
    assert cat_view.page == 0 and cat_view.page_slider.max == 2 and cat_view.events() == []
