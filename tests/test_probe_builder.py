"""The probe builder widget, driven headless through its controls: the definition
grows with the boxes, Create writes dynamic_events (a refusal shows error_log's
entry and creates nothing), enable + Run show the event's records, Remove undoes it."""

from __future__ import annotations

from ftracelab import Lab
from ftracelab.widgets import ProbeBuilder


def test_definition_follows_the_controls(lab: Lab) -> None:
    pb = ProbeBuilder(lab)
    assert pb.definition == "p vfs_read"
    pb.offset.value = 0x10
    pb.arg_name.value, pb.arg_fetch.value, pb.arg_n.value, pb.arg_type.value = "cnt", "$argN", 3, "u32"
    pb.add_button.click()
    assert pb.definition == "p vfs_read+0x10 cnt=$arg3:u32"
    pb.kind.value = "fprobe exit (f %return)"
    assert pb.offset.disabled and pb.definition == "f vfs_read%return cnt=$arg3:u32"
    pb.pop_button.click()
    pb.event.value = "mine/ev"
    pb.arg_name.value, pb.arg_fetch.value, pb.arg_type.value = "", "$retval", "s64"
    pb.add_button.click()
    assert pb.definition == "f:mine/ev vfs_read%return $retval:s64" and "$retval:s64" in pb.line.value


def test_refused_definition_shows_the_error_log(lab: Lab) -> None:
    pb = ProbeBuilder(lab)
    pb.kind.value = "kretprobe (r)"
    pb.add_arg("x=$stack10000")
    pb.create_button.click()
    assert pb.created is None and "Invalid stack number" in pb.status.value
    assert "^" in pb.status.value and lab.tracefs.read("dynamic_events") == ""
    assert pb.run_button.disabled and pb.enable_box.disabled


def test_create_enable_run_remove(lab: Lab) -> None:
    pb = ProbeBuilder(lab, "ksys_read")
    pb.offset.value = 0x38
    pb.add_arg("file=%bx")
    pb.add_arg("comm=$comm")
    pb.create_button.click()
    assert pb.created == "kprobes/p_ksys_read_56" and pb.create_button.disabled
    assert lab.tracefs.read("dynamic_events") == "p:kprobes/p_ksys_read_56 ksys_read+56 file=%bx comm=$comm\n"
    pb.enable_box.value = True
    assert lab.tracefs.read("events/kprobes/p_ksys_read_56/enable") == "1\n"
    df = pb.run("cat")
    assert len(df) == 3 and set(df["comm"]) == {"cat"}
    assert pb.events_html.value.count("p_ksys_read_56: (ksys_read+0x38/0xb0)") == 3
    pb.remove_button.click()
    assert pb.created is None and lab.tracefs.read("dynamic_events") == ""
    assert not lab.kprobes.by_addr and not pb.create_button.disabled
