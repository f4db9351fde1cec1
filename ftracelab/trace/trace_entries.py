"""The ftrace entries the lab writes and their format files (kernel/trace/trace_entries.h,
kernel/trace/trace_export.c: the FTRACE_ENTRY() definitions and their
events/ftrace/<entry>/format text).

Every entry starts with ``struct trace_entry`` (the common fields)::

    0x00 u16 common_type   0x02 u8 common_flags   0x03 u8 common_preempt_count
    0x04 int common_pid    0x08 the entry's own fields
"""

from __future__ import annotations

Field = tuple[str, str, int, int, int]          # type, name, offset, size, signed

COMMON_FIELDS: tuple[Field, ...] = (
    ("unsigned short", "common_type", 0, 2, 0),
    ("unsigned char", "common_flags", 2, 1, 0),
    ("unsigned char", "common_preempt_count", 3, 1, 0),
    ("int", "common_pid", 4, 4, 1),
)

TRACE_FN, TRACE_STACK, TRACE_PRINT, TRACE_GRAPH_RET, TRACE_GRAPH_ENT = 1, 4, 5, 10, 11
TRACE_RAW_DATA = 18       # trace_marker_raw's entry
TRACE_FUNC_REPEATS = 19   # options/func-no-repeats' entry


def format_file(name: str, event_id: int, fields: tuple[Field, ...], print_fmt: str) -> str:
    """The text of events/ftrace/<name>/format, as the kernel prints it."""
    def lines(group: tuple[Field, ...]) -> str:
        return "".join(f"\tfield:{t} {n};\toffset:{o};\tsize:{z};\tsigned:{g};\n"
                       for t, n, o, z, g in group)
    return (f"name: {name}\nID: {event_id}\nformat:\n{lines(COMMON_FIELDS)}\n{lines(fields)}"
            f"\nprint fmt: {print_fmt}\n")


FUNCTION_FORMAT = format_file(
    "function", TRACE_FN,
    (("unsigned long", "ip", 8, 8, 0), ("unsigned long", "parent_ip", 16, 8, 0)),
    '" %ps <-- %ps", (void *)REC->ip, (void *)REC->parent_ip')

KERNEL_STACK_FORMAT = format_file(
    "kernel_stack", TRACE_STACK,
    (("int", "size", 8, 4, 1), ("unsigned long", "caller[8]", 16, 64, 0)),
    '"\\t=> %ps\\n\\t=> %ps\\n\\t=> %ps\\n" "\\t=> %ps\\n\\t=> %ps\\n\\t=> %ps\\n" '
    '"\\t=> %ps\\n\\t=> %ps\\n", '
    + ", ".join(f"(void *)REC->caller[{i}]" for i in range(8)))

PRINT_FORMAT = format_file(
    "print", TRACE_PRINT,
    (("unsigned long", "ip", 8, 8, 0), ("char", "buf[]", 16, 0, 0)),
    '"%ps: %s", (void *)REC->ip, REC->buf')

FUNCGRAPH_ENTRY_FORMAT = format_file(
    "funcgraph_entry", TRACE_GRAPH_ENT,
    (("unsigned long", "func", 8, 8, 0), ("int", "depth", 16, 4, 1)),
    '"--> %ps (%d)", (void *)REC->func, REC->depth')

# With CONFIG_FUNCTION_GRAPH_RETVAL (6.12: struct ftrace_graph_ret packed, calltime inside)
FUNCGRAPH_EXIT_FORMAT = format_file(
    "funcgraph_exit", TRACE_GRAPH_RET,
    (("unsigned long", "func", 8, 8, 0), ("unsigned long", "retval", 16, 8, 0),
     ("int", "depth", 24, 4, 1), ("unsigned int", "overrun", 28, 4, 0),
     ("unsigned long long", "calltime", 32, 8, 0), ("unsigned long long", "rettime", 40, 8, 0)),
    '"<-- %ps (%d) (start: %llx  end: %llx) over: %d retval: %lx", (void *)REC->func, REC->depth, '
    'REC->calltime, REC->rettime, REC->depth, REC->retval')

RAW_DATA_FORMAT = format_file(
    "raw_data", TRACE_RAW_DATA,
    (("unsigned int", "id", 8, 4, 0), ("char", "buf[]", 12, 0, 0)),
    '"id:%04x %08x", REC->id, (int)REC->buf[0]')


FUNC_REPEATS_FORMAT = format_file(
    "func_repeats", TRACE_FUNC_REPEATS,
    (("unsigned long", "ip", 8, 8, 0), ("unsigned long", "parent_ip", 16, 8, 0), ("u16", "count", 24, 2, 0),
     ("u16", "top_delta_ts", 26, 2, 0), ("u32", "bottom_delta_ts", 28, 4, 0)),
    '" %ps <-%ps\\t(repeats:%u  delta: -%llu)", (void *)REC->ip, (void *)REC->parent_ip, REC->count, '
    '(((u64)(REC)->top_delta_ts << 32) | (REC)->bottom_delta_ts)')


def ftrace_formats() -> dict[str, str]:
    """events/ftrace/<entry>/format of the entries above, by ``ftrace/<name>``."""
    return {"ftrace/function": FUNCTION_FORMAT, "ftrace/kernel_stack": KERNEL_STACK_FORMAT,
            "ftrace/print": PRINT_FORMAT, "ftrace/funcgraph_entry": FUNCGRAPH_ENTRY_FORMAT,
            "ftrace/funcgraph_exit": FUNCGRAPH_EXIT_FORMAT, "ftrace/raw_data": RAW_DATA_FORMAT,
            "ftrace/func_repeats": FUNC_REPEATS_FORMAT}
