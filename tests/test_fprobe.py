"""fprobe (trace/fprobe.py, the fgraph-based fprobe of Linux 6.14): Python and
native entry/exit handlers on several symbols and globs, entry data kept on the
shadow stack (a DATA control word in the inspector), skipping the exit, nmissed
when the stack is full, enable/disable and unregister."""

from __future__ import annotations

from typing import Any

import pytest

from ftracelab import Lab
from ftracelab.errors import FtraceLabError
from ftracelab.trace.fprobe import LATENCY, Fprobe


def test_python_handlers_on_globs_with_entry_data(lab: Lab) -> None:
    """The entry keeps $arg3 (count) in the entry data; the exit sees it with the
    return value and the address returned to."""
    ks = lab.machine.kallsyms
    seen: list[tuple[str, int, int, str]] = []

    def entry(fp: Fprobe, ip: int, ret_ip: int, regs: Any, data: bytearray) -> None:
        data[:8] = regs.arg(3).to_bytes(8, "little")

    def exit_(fp: Fprobe, ip: int, ret_ip: int, regs: Any, data: bytes) -> None:
        seen.append((ks.format_short(ip), int.from_bytes(data[:8], "little"), regs.ax,
                     ks.format_ps(ret_ip)))
    fp = lab.fprobe.register(Fprobe(entry, exit_, 8, name="reads"), ["vfs_r*", "ksys_read"])
    assert {ks.format_short(ip) for ip in fp.ips} == {"vfs_read", "ksys_read"}
    assert lab.run("cat").completed
    reads = [s for s in seen if s[0] == "vfs_read"]
    assert [(c, r) for _, c, r, _ in reads] == [(4096, 4096), (4096, 3104), (4096, 0)]
    assert {w for *_, w in reads} == {"ksys_read+0x52/0xb0"}
    assert len([s for s in seen if s[0] == "ksys_read"]) == 3 and fp.nmissed == 0


def test_entry_true_skips_the_exit_and_disable(lab: Lab) -> None:
    exits: list[int] = []
    fp = lab.fprobe.register(Fprobe(lambda *a: True, lambda *a: exits.append(1), 0), "vfs_read")
    assert lab.run("cat").completed and exits == []
    fp2 = lab.fprobe.register(Fprobe(None, lambda *a: exits.append(2), 0), "vfs_read")
    fp2.disable()
    assert lab.run("cat").completed and exits == []
    fp2.enable()
    assert lab.run("cat").completed and exits == [2, 2, 2]
    lab.fprobe.unregister(fp)
    lab.fprobe.unregister(fp2)
    assert lab.fprobe.gops is None
    assert lab.run("cat").completed and exits == [2, 2, 2]


def test_entry_data_is_a_data_word_on_the_shadow_stack(lab: Lab) -> None:
    fp = lab.fprobe.register(Fprobe(lambda fp, ip, r, regs, data: data.__setitem__(slice(0, 8), b"ENTRYDAT"),
                                    lambda *a: None, 8, name="mine"), "vfs_read")
    events = lab.step_graph("vfs_read", "cat")
    names = {g.idx: g.name for g in lab.fgraph.gops}
    rows = [r for ev in events for r in ev.stack.inspect(lab.kallsyms.format_ps, names)]
    data_rows = [r for r in rows if r.kind == "data"]
    assert data_rows and any("fprobe_graph_ops" in r.detail for r in rows if r.kind == "control")
    assert fp.addr in {r.value for r in data_rows}                       # the header: struct fprobe *
    assert int.from_bytes(b"ENTRYDAT", "little") in {r.value for r in data_rows}


def test_nmissed_when_the_shadow_stack_is_full(lab: Lab) -> None:
    """240 bytes of entry data at every function of a 30-component path walk: the
    deepest calls find no room on the shadow stack and count as missed."""
    exits: list[int] = []
    fp = lab.fprobe.register(Fprobe(None, lambda *a: exits.append(1), 240, name="big"), "*")
    assert lab.run("cat", path="/" + "/".join(["d"] * 30)).completed
    assert fp.nmissed > 0 and exits


def test_native_handlers(lab: Lab) -> None:
    """fprobe_latency_entry/exit (samples/fprobe_latency.c) run in the image: the
    two reads that go to the slow disk land in the 2^15 ns bucket, the cached ones far
    below."""
    fp = lab.fprobe.register(Fprobe("fprobe_latency_entry", "fprobe_latency_exit", 8, name="lat",
                                    private_size=LATENCY.size), "vfs_read")
    assert lab.run("slow-read").completed
    lat = fp.latency()
    assert lat["nhit"] == lat["nexit"] == 18
    assert lat["log2_ns"].get(15) == 2 and sum(lat["log2_ns"].values()) == 18
    assert 32768 <= lat["max_ns"] < 65536 and lat["total_ns"] > 2 * 32768


def test_registration_errors(lab: Lab) -> None:
    for fp, flt, text in ((Fprobe(None, None, 0), "no_such_fn*", "matches no traceable function"),
                          (Fprobe(None, lambda *a: None, 300), "vfs_read", "-E2BIG"),
                          (Fprobe("no_such_handler", None, 0), "vfs_read", "no native handler")):
        with pytest.raises(FtraceLabError, match=text):
            lab.fprobe.register(fp, flt)
    with pytest.raises(FtraceLabError, match="fprobe_latency"):
        lab.fprobe.register(Fprobe(None, lambda *a: None, 0), "vfs_read").latency()
