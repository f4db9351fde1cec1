"""The mini-kernel's trace events as 6.12 declares them: include/trace/events/
{sched,irq}.h, arch/x86/include/asm/trace/irq_vectors.h, include/trace/events/
syscalls.h (raw_syscalls) and the per-syscall events of kernel/trace/trace_syscalls.c
(syscall_enter_define_fields(), __set_enter_print_fmt()). Their format files are
the kernel's; trace_events.py registers them.

A field is ``(type, name, offset, size, signed)`` as its format file line shows it.
"""

from __future__ import annotations

from .trace_entries import Field

__all__ = ["STATIC_EVENTS", "SYSCALLS", "syscall_formats"]


def _comm(name: str, offset: int) -> Field:
    return ("char", f"{name}[16]", offset, 16, 0)


SCHED_WAKEUP_FIELDS = (_comm("comm", 8), ("pid_t", "pid", 24, 4, 1), ("int", "prio", 28, 4, 1),
                       ("int", "target_cpu", 32, 4, 1))
SCHED_WAKEUP_FMT = '"comm=%s pid=%d prio=%d target_cpu=%03d", REC->comm, REC->pid, REC->prio, REC->target_cpu'
SCHED_PROCESS_FIELDS = (_comm("comm", 8), ("pid_t", "pid", 24, 4, 1), ("int", "prio", 28, 4, 1))
SCHED_PROCESS_FMT = '"comm=%s pid=%d prio=%d", REC->comm, REC->pid, REC->prio'
_STATES = " | ".join(f"0x{b:08x}" for b in (0, 1, 2, 4, 8, 16, 32, 64))    # TASK_REPORT's states
SCHED_SWITCH_FMT = (
    '"prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s next_pid=%d next_prio=%d", '
    f"REC->prev_comm, REC->prev_pid, REC->prev_prio, (REC->prev_state & (((({_STATES}) + 1) << 1) - 1)) ? "
    f"__print_flags(REC->prev_state & (((({_STATES}) + 1) << 1) - 1), \"|\", "
    '{ 0x00000001, "S" }, { 0x00000002, "D" }, { 0x00000004, "T" }, { 0x00000008, "t" }, '
    '{ 0x00000010, "X" }, { 0x00000020, "Z" }, { 0x00000040, "P" }, { 0x00000080, "I" }) : "R", '
    f"REC->prev_state & ((({_STATES}) + 1) << 1) ? \"+\" : \"\", "
    "REC->next_comm, REC->next_pid, REC->next_prio")
SOFTIRQ_FMT = ('"vec=%u [action=%s]", REC->vec, __print_symbolic(REC->vec, { 0, "HI" }, { 1, "TIMER" }, '
               '{ 2, "NET_TX" }, { 3, "NET_RX" }, { 4, "BLOCK" }, { 5, "IRQ_POLL" }, { 6, "TASKLET" }, '
               '{ 7, "SCHED" }, { 8, "HRTIMER" }, { 9, "RCU" })')

#: (system, event, tracepoint, fields, print fmt) in registration order
STATIC_EVENTS: tuple[tuple[str, str, str, tuple[Field, ...], str], ...] = (
    ("sched", "sched_process_fork", "sched_process_fork",
     (_comm("parent_comm", 8), ("pid_t", "parent_pid", 24, 4, 1), _comm("child_comm", 28),
      ("pid_t", "child_pid", 44, 4, 1)),
     '"comm=%s pid=%d child_comm=%s child_pid=%d", REC->parent_comm, REC->parent_pid, '
     "REC->child_comm, REC->child_pid"),
    ("sched", "sched_process_wait", "sched_process_wait", SCHED_PROCESS_FIELDS, SCHED_PROCESS_FMT),
    ("sched", "sched_process_exit", "sched_process_exit", SCHED_PROCESS_FIELDS, SCHED_PROCESS_FMT),
    ("sched", "sched_process_free", "sched_process_free", SCHED_PROCESS_FIELDS, SCHED_PROCESS_FMT),
    ("sched", "sched_switch", "sched_switch",
     (_comm("prev_comm", 8), ("pid_t", "prev_pid", 24, 4, 1), ("int", "prev_prio", 28, 4, 1),
      ("long", "prev_state", 32, 8, 1), _comm("next_comm", 40), ("pid_t", "next_pid", 56, 4, 1),
      ("int", "next_prio", 60, 4, 1)), SCHED_SWITCH_FMT),
    ("sched", "sched_wakeup_new", "sched_wakeup_new", SCHED_WAKEUP_FIELDS, SCHED_WAKEUP_FMT),
    ("sched", "sched_wakeup", "sched_wakeup", SCHED_WAKEUP_FIELDS, SCHED_WAKEUP_FMT),
    ("sched", "sched_waking", "sched_waking", SCHED_WAKEUP_FIELDS, SCHED_WAKEUP_FMT),
    ("irq", "softirq_entry", "softirq_entry", (("unsigned int", "vec", 8, 4, 0),), SOFTIRQ_FMT),
    ("irq", "softirq_exit", "softirq_exit", (("unsigned int", "vec", 8, 4, 0),), SOFTIRQ_FMT),
    ("irq", "softirq_raise", "softirq_raise", (("unsigned int", "vec", 8, 4, 0),), SOFTIRQ_FMT),
    ("irq", "irq_handler_entry", "irq_handler_entry",
     (("int", "irq", 8, 4, 1), ("__data_loc char[]", "name", 12, 4, 0)),
     '"irq=%d name=%s", REC->irq, __get_str(name)'),
    ("irq", "irq_handler_exit", "irq_handler_exit", (("int", "irq", 8, 4, 1), ("int", "ret", 12, 4, 1)),
     '"irq=%d ret=%s", REC->irq, REC->ret ? "handled" : "unhandled"'),
    ("irq_vectors", "local_timer_entry", "local_timer_entry", (("int", "vector", 8, 4, 1),),
     '"vector=%d", REC->vector'),
    ("irq_vectors", "local_timer_exit", "local_timer_exit", (("int", "vector", 8, 4, 1),),
     '"vector=%d", REC->vector'),
    ("irq_vectors", "reschedule_entry", "reschedule_entry", (("int", "vector", 8, 4, 1),),
     '"vector=%d", REC->vector'),
    ("irq_vectors", "reschedule_exit", "reschedule_exit", (("int", "vector", 8, 4, 1),),
     '"vector=%d", REC->vector'),
    ("raw_syscalls", "sys_enter", "sys_enter",
     (("long", "id", 8, 8, 1), ("unsigned long", "args[6]", 16, 48, 0)),
     '"NR %ld (%lx, %lx, %lx, %lx, %lx, %lx)", REC->id, REC->args[0], REC->args[1], REC->args[2], '
     "REC->args[3], REC->args[4], REC->args[5]"),
    ("raw_syscalls", "sys_exit", "sys_exit", (("long", "id", 8, 8, 1), ("long", "ret", 16, 8, 1)),
     '"NR %ld = %ld", REC->id, REC->ret'),
)

#: The mini-kernel's syscalls: number, name, (type, name) of each argument, as their
#: 6.12 SYSCALL_DEFINEs declare them (x86-64 numbers; __user dropped, as the formats do).
SYSCALLS: tuple[tuple[int, str, tuple[tuple[str, str], ...]], ...] = (
    (0, "read", (("unsigned int", "fd"), ("char *", "buf"), ("size_t", "count"))),
    (1, "write", (("unsigned int", "fd"), ("const char *", "buf"), ("size_t", "count"))),
    (3, "close", (("unsigned int", "fd"),)),
    (9, "mmap", (("unsigned long", "addr"), ("unsigned long", "len"), ("unsigned long", "prot"),
                 ("unsigned long", "flags"), ("unsigned long", "fd"), ("unsigned long", "off"))),
    (24, "sched_yield", ()),
    (35, "nanosleep", (("struct __kernel_timespec *", "rqtp"), ("struct __kernel_timespec *", "rmtp"))),
    (39, "getpid", ()),
    (56, "clone", (("unsigned long", "clone_flags"), ("unsigned long", "newsp"), ("int *", "parent_tidptr"),
                   ("int *", "child_tidptr"), ("unsigned long", "tls"))),
    (60, "exit", (("int", "error_code"),)),
    (61, "wait4", (("pid_t", "upid"), ("int *", "stat_addr"), ("int", "options"), ("struct rusage *", "ru"))),
    (231, "exit_group", (("int", "error_code"),)),
    (257, "openat", (("int", "dfd"), ("const char *", "filename"), ("int", "flags"), ("umode_t", "mode"))),
)


def syscall_formats(name: str, args: tuple[tuple[str, str], ...]) -> tuple[tuple[Field, ...], str,
                                                                            tuple[Field, ...], str]:
    """syscall_enter_define_fields()/__set_enter_print_fmt() and the exit's."""
    enter: tuple[Field, ...] = (("int", "__syscall_nr", 8, 4, 1),
                                *((t, n, 16 + 8 * i, 8, 0) for i, (t, n) in enumerate(args)))
    fmt = '"' + ", ".join(f"{n}: 0x%08lx" for _, n in args) + '"' + "".join(
        f", ((unsigned long)(REC->{n}))" for _, n in args)
    exit_fields = (("int", "__syscall_nr", 8, 4, 1), ("long", "ret", 16, 8, 1))
    return enter, fmt, exit_fields, '"0x%lx", REC->ret'
