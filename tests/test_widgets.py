"""The notebook widgets, driven headless through their buttons: the site
patcher shows dyn_ftrace records and live bytes as ops come and go, the
trampoline stepper browses a recorded path through the trampoline."""

from __future__ import annotations

import html
import re
import subprocess
import sys

import pytest

from ftracelab import Lab
from ftracelab.arch.x86_64.insn import call_target
from ftracelab.machine.stepper import StepTrace
from ftracelab.trace.ftrace_ops import FtraceOpsFlag
from ftracelab.widgets import SitePatcher, TrampolineStepper
from ftracelab.widgets.site_patcher import SiteRow

VFS = ["vfs_read", "vfs_write", "vfs_open"]
NOP = "0f 1f 44 00 00"


@pytest.fixture
def patcher() -> SitePatcher:
    return SitePatcher(Lab(cpus=2, seed=0))


def _functions(sp: SitePatcher) -> list[str]:
    return [r["function"] for r in sp.rows()]


def _live(sp: SitePatcher, row: SiteRow) -> bytes:
    return sp.lab.machine.read(row["ip"], 5)


def test_import_ftracelab_does_not_import_ipywidgets() -> None:
    code = "import sys, ftracelab; ftracelab.Lab; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- SitePatcher ----------------------------------------------------------------
def test_show_lists_the_glob_s_sites_as_nops(patcher: SitePatcher) -> None:
    lab = patcher.lab
    patcher.glob.value = "vfs_read"
    patcher.show_button.click()
    assert _functions(patcher) == ["vfs_read"]
    patcher.glob.value = "vfs_*"
    assert _functions(patcher) == ["vfs_read"]          # nothing changes before Show
    patcher.show_button.click()
    assert sorted(_functions(patcher)) == sorted(VFS)
    for row in patcher.rows():
        assert row["ip"] == lab.fentry_site(row["function"])
        assert (row["calls"], row["bytes"], row["ref"], row["flags"]) == ("NOP", NOP, 0, "")
        assert _live(patcher, row).hex(" ") == NOP
        assert row["function"] in patcher.table.value
    assert "3 call site(s)" in patcher.status.value
    assert sorted(patcher.function_dropdown.options) == sorted(VFS)


def test_negated_word_removes_functions(patcher: SitePatcher) -> None:
    patcher.glob.value = "vfs_* !vfs_open"
    patcher.show_button.click()
    assert sorted(_functions(patcher)) == ["vfs_read", "vfs_write"]


def test_disassembly_pane_follows_the_dropdown(patcher: SitePatcher) -> None:
    patcher.function_dropdown.value = "vfs_write"
    text = patcher.disasm.value
    assert text.startswith("<pre>") and "&lt;vfs_write+4&gt;" in text and "FTRACE NOP" in text
    assert "vfs_read" not in text
    assert len(text.removeprefix("<pre>").removesuffix("</pre>").splitlines()) == 8


def test_register_patches_sites_to_the_ops_trampoline(patcher: SitePatcher) -> None:
    patcher.register_button.click()
    [ops] = patcher.lab.ftrace.ops
    assert ops.func == "lab_count_func" and ops.flags & FtraceOpsFlag.RECURSION
    assert sorted(ops.functions) == sorted(VFS)
    assert "registered" in patcher.status.value
    for row in patcher.rows():
        assert row["calls"] == "call ftrace_trampoline"
        assert row["ref"] == 1
        assert {"ENABLED", "TRAMP", "TRAMP_EN"} <= set(row["flags"].split("|"))
        assert call_target(row["ip"], _live(patcher, row)) == ops.trampoline
        assert row["bytes"] == _live(patcher, row).hex(" ") != NOP
    assert "ftrace_trampoline" in patcher.disasm.value
    assert [o for _label, o in patcher.unregister_dropdown.options] == [ops]


def test_overlapping_ops_share_ftrace_caller(patcher: SitePatcher) -> None:
    patcher.register_button.click()
    patcher.glob.value = "vfs_read"
    patcher.register_button.click()
    patcher.glob.value = "vfs_*"
    patcher.show_button.click()
    rows = {r["function"]: r for r in patcher.rows()}
    assert rows["vfs_read"]["calls"] == "call ftrace_caller"
    assert rows["vfs_read"]["ref"] == 2
    assert "TRAMP" not in rows["vfs_read"]["flags"].split("|")
    caller = patcher.lab.symbol("ftrace_caller")
    assert call_target(rows["vfs_read"]["ip"], _live(patcher, rows["vfs_read"])) == caller
    for fn in ("vfs_write", "vfs_open"):
        assert (rows[fn]["calls"], rows[fn]["ref"]) == ("call ftrace_trampoline", 1)
    assert len(patcher.unregister_dropdown.options) == 2


def test_step_mode_shows_the_int3_byte_mid_poke(patcher: SitePatcher) -> None:
    ftrace = patcher.lab.ftrace
    patcher.glob.value = "vfs_read"
    patcher.show_button.click()
    patcher.step_checkbox.value = True
    assert patcher.step_button.disabled
    patcher.register_button.click()
    assert "pending" in patcher.status.value
    assert patcher.rows()[0]["bytes"] == NOP                # nothing written yet
    assert ftrace.pending is not None and not ftrace.pending.finished
    assert not patcher.step_button.disabled
    seen: list[str] = []
    clicks = 0
    while not ftrace.pending.finished:
        patcher.step_button.click()
        clicks += 1
        assert patcher.status.value.startswith("round ")
        row = patcher.rows()[0]
        assert row["bytes"] == _live(patcher, row).hex(" ")
        if row["bytes"].startswith("cc"):
            assert row["calls"].startswith("int3")
            assert "int3" in patcher.disasm.value
        if not seen or seen[-1] != row["bytes"]:
            seen.append(row["bytes"])
        assert clicks < 20
    assert clicks >= 3
    final = seen[-1]
    # the int3 protocol as the table showed it: int3, new tail, new first byte
    assert seen == [NOP, "cc" + NOP[2:], "cc" + final[2:], final]
    assert final.startswith("e8") and patcher.rows()[0]["calls"] == "call ftrace_trampoline"
    assert patcher.step_button.disabled and "update complete" in patcher.status.value


def test_stepped_unregister_shows_int3_after_the_first_click(patcher: SitePatcher) -> None:
    ftrace = patcher.lab.ftrace
    patcher.register_button.click()
    patcher.glob.value = "vfs_read"
    patcher.register_button.click()          # two ops: ftrace_call already the list func
    patcher.step_checkbox.value = True
    patcher.unregister_dropdown.value = ftrace.ops[1]
    patcher.unregister_button.click()
    assert patcher.rows()[0]["calls"] == "call ftrace_caller"
    patcher.step_button.click()
    assert patcher.rows()[0]["bytes"].startswith("cc ")
    while ftrace.pending is not None and not ftrace.pending.finished:
        patcher.step_button.click()
    assert patcher.rows()[0]["calls"] == "call ftrace_trampoline"


def test_unregister_restores_the_nop(patcher: SitePatcher) -> None:
    patcher.register_button.click()
    assert patcher.rows()[0]["calls"] != "NOP"
    patcher.unregister_button.click()
    assert patcher.lab.ftrace.ops == []
    assert "unregistered" in patcher.status.value
    for row in patcher.rows():
        assert (row["calls"], row["bytes"], row["ref"]) == ("NOP", NOP, 0)
        assert "ENABLED" not in row["flags"].split("|")
        assert _live(patcher, row).hex(" ") == NOP
    assert patcher.unregister_dropdown.options == ()
    assert patcher.unregister_button.disabled


@pytest.mark.parametrize("glob", ["no_such_function*", "vfs_* bogus_name"])
def test_bad_glob_is_reported_not_raised(patcher: SitePatcher, glob: str) -> None:
    patcher.glob.value = glob
    patcher.show_button.click()
    assert "error" in patcher.status.value and "matches no traceable function" in patcher.status.value
    assert patcher.rows() == []
    patcher.register_button.click()
    assert "error" in patcher.status.value
    assert patcher.lab.ftrace.ops == []


def test_actions_without_a_target_report_errors(patcher: SitePatcher) -> None:
    patcher.step_button.click()
    assert "no text update is pending" in patcher.status.value
    patcher.unregister_button.click()
    assert "no ftrace_ops is registered" in patcher.status.value
    patcher.glob.value = "  "
    patcher.register_button.click()
    assert "error" in patcher.status.value and patcher.lab.ftrace.ops == []


# ---- TrampolineStepper ------------------------------------------------------------
@pytest.fixture(scope="module")
def recorded() -> tuple[Lab, StepTrace]:
    lab = Lab(cpus=2, seed=0)
    lab.ftrace.register(lambda ip, pip, ops, fregs: None, filter="vfs_read")
    stepper = TrampolineStepper.from_lab(lab, "vfs_read")
    return lab, stepper.trace


@pytest.fixture
def stepper(recorded: tuple[Lab, StepTrace]) -> TrampolineStepper:
    lab, trace = recorded
    return TrampolineStepper(trace, kallsyms=lab.kallsyms)


def test_from_lab_records_the_trampoline_path(recorded: tuple[Lab, StepTrace]) -> None:
    lab, trace = recorded
    site = lab.fentry_site("vfs_read")
    assert trace.complete and len(trace) > 10
    assert trace[0].address == site and trace[0].text.startswith("call")
    assert trace.stop == site + 5
    assert any(s.where.startswith("ftrace_trampoline") for s in trace.steps)


def test_next_and_previous_move_the_position(stepper: TrampolineStepper) -> None:
    assert stepper.position == 0 and stepper.prev_button.disabled
    stepper.previous()
    assert stepper.position == 0
    stepper.next()
    stepper.next_button.click()
    assert stepper.position == 2 == stepper.slider.value
    stepper.prev_button.click()
    assert stepper.position == 1
    current = re.search(r"<tr style='[^']*'>(.*?)</tr>", stepper.listing.value)
    assert current is not None
    assert "<td>1</td>" in current.group(1) and html.escape(stepper.trace[1].where) in current.group(1)
    stepper.slider.value = 5
    assert stepper.position == 5 and "step 5:" in stepper.header.value
    stepper.position = 10**6
    assert stepper.position == len(stepper.trace) - 1 and stepper.next_button.disabled
    stepper.next()
    assert stepper.position == len(stepper.trace) - 1


def test_run_to_return_from_the_fentry_call(stepper: TrampolineStepper,
                                            recorded: tuple[Lab, StepTrace]) -> None:
    lab, trace = recorded
    site = lab.fentry_site("vfs_read")
    assert trace[0].stack[0][1] == site + 5                 # what the call pushed
    stepper.return_button.click()
    expected = next((s.index for s in trace.steps if s.address == site + 5), len(trace) - 1)
    assert stepper.position == expected
    assert trace[stepper.position].text.startswith("ret")   # the trampoline's own ret


def test_run_to_return_over_a_nested_call(stepper: TrampolineStepper) -> None:
    trace = stepper.trace
    i = next(s.index for s in trace.steps[1:] if re.fullmatch(r"callq? 0x[0-9a-f]+", s.text))
    stepper.position = i
    stepper.run_to_return()
    j = stepper.position
    assert j > i + 1 and trace[j].address == trace[i].address + 5      # call rel32 is 5 bytes
    assert all(s.address != trace[i].address + 5 for s in trace.steps[i + 1:j])
    assert trace[j - 1].text.startswith("ret")
    # from inside the callee, "finish" lands on the same instruction after the call
    stepper.position = i + 1
    assert stepper.run_to_return() == j


def test_register_panel_highlights_changed_registers(stepper: TrampolineStepper,
                                                     recorded: tuple[Lab, StepTrace]) -> None:
    lab, trace = recorded
    regs = stepper.registers.value
    assert "rsp" in regs and "rdi" in regs
    changed = set(re.findall(r"class='changed'><td><b>(\w+)</b>", regs))
    assert changed == set(trace[0].changed) and "rsp" in changed
    before, after = trace[0].changed["rsp"]
    assert f"{after:#x}" in regs and f"was {before:#x}" in regs
    site = lab.fentry_site("vfs_read")
    assert f"{site + 5:#x}" in stepper.memory.value
    assert "vfs_read+0x9" in stepper.stack.value
    stepper.next()
    assert set(re.findall(r"class='changed'><td><b>(\w+)</b>", stepper.registers.value)) \
        == set(trace[1].changed)


def test_empty_trace_renders() -> None:
    stepper = TrampolineStepper(StepTrace([], 0, 0, False))
    stepper.next()
    stepper.run_to_return()
    assert stepper.position == 0 and "no instructions" in stepper.header.value
