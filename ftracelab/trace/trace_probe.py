"""kernel/trace/trace_probe.{c,h} of Linux 6.12: what every probe event shares, the
error table and the error-log positions (trace_probe_log_*), the event-name rules
(traceprobe_parse_event_name()), the fetch-argument grammar
(traceprobe_parse_probe_arg(), parse_probe_arg_type(), parse_probe_arg(),
parse_probe_vars(), finalize_fetch_insn()) and the fetch types.

A fetch argument parses to a small tree, the lab's form of the kernel's
``struct fetch_insn`` program::

    [NAME=]FETCHARG[:TYPE]
    FETCHARG  $argN $retval $stackN $stack $comm %REG @ADDR @SYM[+|-off]
              +|-[u]OFFS(FETCHARG)  \\IMM  \\"STRING"
    TYPE      u8..u64 s8..s64 x8..x64 char string ustring symbol symstr
              b<width>@<offset>/<container>   TYPE[N]

This kernel has no BTF, as a 6.12 kernel built without
CONFIG_PROBE_EVENTS_BTF_ARGS: bare names and ``$arg*`` are NOSUP_BTFARG,
arguments are named ``arg1``, ``arg2`` ... by position.

Errors go to the caller's :class:`ProbeLog` with the kernel's caret position:
the argv words are joined with single spaces, and the caret is at the start of
word ``index`` plus the offset the parser reports (past the end when the index
is past the last word), exactly as __trace_probe_log_err() computes it.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field

__all__ = [
    "ERRORS",
    "FETCH_TYPES",
    "TPARG_FL_FENTRY",
    "TPARG_FL_FPROBE",
    "TPARG_FL_KERNEL",
    "TPARG_FL_RETURN",
    "TPARG_FL_TPOINT",
    "Fetch",
    "FetchType",
    "ParseContext",
    "ProbeArg",
    "ProbeError",
    "ProbeLog",
    "expand_meta_args",
    "parse_event_name",
    "parse_probe_arg",
]

#: trace_probe.h ERRORS of 6.12.0, in order (the index is TP_ERR_<NAME>); typos are the kernel's.
ERRORS: tuple[tuple[str, str], ...] = (
    ("FILE_NOT_FOUND", "Failed to find the given file"),
    ("NO_REGULAR_FILE", "Not a regular file"),
    ("BAD_REFCNT", "Invalid reference counter offset"),
    ("REFCNT_OPEN_BRACE", "Reference counter brace is not closed"),
    ("BAD_REFCNT_SUFFIX", "Reference counter has wrong suffix"),
    ("BAD_UPROBE_OFFS", "Invalid uprobe offset"),
    ("BAD_MAXACT_TYPE", "Maxactive is only for function exit"),
    ("BAD_MAXACT", "Invalid maxactive number"),
    ("MAXACT_TOO_BIG", "Maxactive is too big"),
    ("BAD_PROBE_ADDR", "Invalid probed address or symbol"),
    ("NON_UNIQ_SYMBOL", "The symbol is not unique"),
    ("BAD_RETPROBE", "Retprobe address must be an function entry"),
    ("NO_TRACEPOINT", "Tracepoint is not found"),
    ("BAD_ADDR_SUFFIX", "Invalid probed address suffix"),
    ("NO_GROUP_NAME", "Group name is not specified"),
    ("GROUP_TOO_LONG", "Group name is too long"),
    ("BAD_GROUP_NAME", "Group name must follow the same rules as C identifiers"),
    ("NO_EVENT_NAME", "Event name is not specified"),
    ("EVENT_TOO_LONG", "Event name is too long"),
    ("BAD_EVENT_NAME", "Event name must follow the same rules as C identifiers"),
    ("EVENT_EXIST", "Given group/event name is already used by another event"),
    ("RETVAL_ON_PROBE", "$retval is not available on probe"),
    ("NO_RETVAL", "This function returns 'void' type"),
    ("BAD_STACK_NUM", "Invalid stack number"),
    ("BAD_ARG_NUM", "Invalid argument number"),
    ("BAD_VAR", "Invalid $-valiable specified"),
    ("BAD_REG_NAME", "Invalid register name"),
    ("BAD_MEM_ADDR", "Invalid memory address"),
    ("BAD_IMM", "Invalid immediate value"),
    ("IMMSTR_NO_CLOSE", "String is not closed with '\"'"),
    ("FILE_ON_KPROBE", "File offset is not available with kprobe"),
    ("BAD_FILE_OFFS", "Invalid file offset value"),
    ("SYM_ON_UPROBE", "Symbol is not available with uprobe"),
    ("TOO_MANY_OPS", "Dereference is too much nested"),
    ("DEREF_NEED_BRACE", "Dereference needs a brace"),
    ("BAD_DEREF_OFFS", "Invalid dereference offset"),
    ("DEREF_OPEN_BRACE", "Dereference brace is not closed"),
    ("COMM_CANT_DEREF", "$comm can not be dereferenced"),
    ("BAD_FETCH_ARG", "Invalid fetch argument"),
    ("ARRAY_NO_CLOSE", "Array is not closed"),
    ("BAD_ARRAY_SUFFIX", "Array has wrong suffix"),
    ("BAD_ARRAY_NUM", "Invalid array size"),
    ("ARRAY_TOO_BIG", "Array number is too big"),
    ("BAD_TYPE", "Unknown type is specified"),
    ("BAD_STRING", "String accepts only memory argument"),
    ("BAD_SYMSTRING", "Symbol String doesn't accept data/userdata"),
    ("BAD_BITFIELD", "Invalid bitfield"),
    ("ARG_NAME_TOO_LONG", "Argument name is too long"),
    ("NO_ARG_NAME", "Argument name is not specified"),
    ("BAD_ARG_NAME", "Argument name must follow the same rules as C identifiers"),
    ("USED_ARG_NAME", "This argument name is already used"),
    ("ARG_TOO_LONG", "Argument expression is too long"),
    ("NO_ARG_BODY", "No argument expression"),
    ("BAD_INSN_BNDRY", "Probe point is not an instruction boundary"),
    ("FAIL_REG_PROBE", "Failed to register probe event"),
    ("DIFF_PROBE_TYPE", "Probe type is different from existing probe"),
    ("DIFF_ARG_TYPE", "Argument type or name is different from existing probe"),
    ("SAME_PROBE", "There is already the exact same probe event"),
    ("NO_EVENT_INFO", "This requires both group and event name to attach"),
    ("BAD_ATTACH_EVENT", "Attached event does not exist"),
    ("BAD_ATTACH_ARG", "Attached event does not have this field"),
    ("NO_EP_FILTER", "No filter rule after 'if'"),
    ("NOSUP_BTFARG", "BTF is not available or not supported"),
    ("NO_BTFARG", "This variable is not found at this probe point"),
    ("NO_BTF_ENTRY", "No BTF entry for this probe point"),
    ("BAD_VAR_ARGS", "$arg* must be an independent parameter without name etc."),
    ("NOFENTRY_ARGS", "$arg* can be used only on function entry or exit"),
    ("DOUBLE_ARGS", "$arg* can be used only once in the parameters"),
    ("ARGS_2LONG", "$arg* failed because the argument list is too long"),
    ("ARGIDX_2BIG", "$argN index is too big"),
    ("NO_PTR_STRCT", "This is not a pointer to union/structure."),
    ("NOSUP_DAT_ARG", "Non pointer structure/union argument is not supported."),
    ("BAD_HYPHEN", "Failed to parse single hyphen. Forgot '>'?"),
    ("NO_BTF_FIELD", "This field is not found."),
    ("BAD_BTF_TID", "Failed to get BTF type info."),
    ("BAD_TYPE4STR", "This type does not fit for string."),
    ("NEED_STRING_TYPE", "$comm and immediate-string only accepts string type"),
)
ERR = {name: i for i, (name, _) in enumerate(ERRORS)}
ERROR_TEXTS = tuple(text for _, text in ERRORS)

MAX_EVENT_NAME_LEN = 64
MAX_TRACE_ARGS = 128
MAX_ARGSTR_LEN = 63
MAX_ARRAY_LEN = 64
MAX_ARG_NAME_LEN = 32
FETCH_INSN_MAX = 16
PARAM_MAX_STACK = 16384 // 8          # THREAD_SIZE / sizeof(long)
#: TPARG_FL_* (trace_probe.h)
TPARG_FL_RETURN, TPARG_FL_KERNEL, TPARG_FL_FENTRY = 1 << 0, 1 << 1, 1 << 2
TPARG_FL_TEVENT, TPARG_FL_USER, TPARG_FL_FPROBE, TPARG_FL_TPOINT = 1 << 3, 1 << 4, 1 << 5, 1 << 6
TPARG_FL_LOC_MASK = 0x1F
RESERVED_FIELDS = ("common_type", "common_flags", "common_preempt_count", "common_pid", "common_tgid",
                   "__probe_ip", "__probe_ret_ip", "__probe_func")
#: arch/x86/kernel/ptrace.c regoffset_table: name -> struct pt_regs slot
X86_REGS = ("r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si",
            "di", "orig_ax", "ip", "cs", "flags", "sp", "ss")


class ProbeError(Exception):
    """A probe definition the kernel refuses: the write fails with ``errno``."""

    def __init__(self, err: int) -> None:
        super().__init__(err, errno.errorcode.get(err, str(err)))
        self.errno = err


@dataclass
class ProbeLog:
    """trace_probe_log: the command's words, the word being parsed, the errors logged
    (caret position, TP_ERR index), in order."""

    subsystem: str
    argv: list[str]
    index: int = 0
    entries: list[tuple[int, int]] = field(default_factory=list)

    @property
    def command(self) -> str:
        return " ".join(self.argv)

    def err(self, offset: int, name: str) -> None:
        """__trace_probe_log_err()."""
        pos = sum(len(a) + 1 for a in self.argv[:self.index])
        if self.index >= len(self.argv):
            pos, offset = sum(len(a) + 1 for a in self.argv), 0
        self.entries.append((pos + offset, ERR[name]))

    def fail(self, offset: int, name: str, err: int = errno.EINVAL) -> ProbeError:
        self.err(offset, name)
        return ProbeError(err)


# ---- fetch types ---------------------------------------------------------------------

@dataclass(frozen=True)
class FetchType:
    """One of probe_fetch_types[]: its record size, sign, how the trace prints it
    (``fmt``) and its type in the format file (``fmttype``)."""

    name: str
    size: int
    signed: bool
    fmt: str
    fmttype: str

    @property
    def is_string(self) -> bool:
        return self.name in ("string", "ustring", "symstr")


def _types() -> dict[str, FetchType]:
    out = {}
    for bits in (8, 16, 32, 64):
        size = bits // 8
        out[f"u{bits}"] = FetchType(f"u{bits}", size, False, "%Lu" if bits == 64 else "%u", f"u{bits}")
        out[f"s{bits}"] = FetchType(f"s{bits}", size, True, "%Ld" if bits == 64 else "%d", f"s{bits}")
        out[f"x{bits}"] = FetchType(f"x{bits}", size, False, "0x%Lx" if bits == 64 else "0x%x", f"u{bits}")
    out["char"] = FetchType("char", 1, False, "'%c'", "u8")
    out["symbol"] = FetchType("symbol", 8, False, "%pS", "u64")
    for name in ("string", "ustring", "symstr"):
        out[name] = FetchType(name, 4, True, '"%s"', "__data_loc char[]")
    return out


FETCH_TYPES = _types()
DEFAULT_TYPE = "x64"


def find_fetch_type(name: str | None, flags: int) -> FetchType | None:
    """find_fetch_type(): a name, a bitfield's container (``b...``/N), or None."""
    if not name:
        name = DEFAULT_TYPE
    if name.startswith("b"):
        if "/" not in name:
            return None
        bits = _kstrtoul(name[name.index("/") + 1:], 0)
        return FETCH_TYPES.get(f"u{bits}") if bits in (8, 16, 32, 64) else None
    if flags & TPARG_FL_USER and name in ("symbol", "symstr"):
        return None
    return FETCH_TYPES.get(name)


# ---- numbers as the kernel's kstrto*() read them ---------------------------------------

def _kstrtoul(text: str, base: int) -> int | None:
    """kstrtoul(): the whole string (one trailing newline allowed), no sign; None on failure."""
    text = text[:-1] if text.endswith("\n") else text
    if base == 0:
        if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
            return int(text, 16)
        if re.fullmatch(r"0[0-7]*", text):
            return int(text, 8)
        if re.fullmatch(r"[1-9][0-9]*", text):
            return int(text)
        return None
    if re.fullmatch(r"[0-9]+", text) and base == 10:
        return int(text)
    return None


def _kstrtol(text: str, base: int) -> int | None:
    if text.startswith("-"):
        value = _kstrtoul(text[1:], base)
        return None if value is None else -value
    return _kstrtoul(text[1:] if text.startswith("+") else text, base)


def is_good_name(name: str) -> bool:
    """is_good_name(): a C identifier."""
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is not None


def is_good_system_name(name: str) -> bool:
    """is_good_system_name(): a C identifier, '-' allowed."""
    return re.fullmatch(r"[A-Za-z_-][A-Za-z0-9_-]*", name) is not None


# ---- event names -----------------------------------------------------------------------

def parse_event_name(log: ProbeLog, text: str, offset: int) -> tuple[str | None, str | None]:
    """traceprobe_parse_event_name(): ``[GROUP/]EVENT`` (or ``GROUP.EVENT``) at
    ``offset`` of argv[0]; returns (group or None, event or None for the default)."""
    log.index = 0
    sep = text.find("/")
    if sep < 0:
        sep = text.find(".")
    group = None
    event = text
    if sep >= 0:
        if sep == 0:
            raise log.fail(offset, "NO_GROUP_NAME")
        if sep + 1 > MAX_EVENT_NAME_LEN:
            raise log.fail(offset, "GROUP_TOO_LONG")
        if not is_good_system_name(text[:sep]):
            raise log.fail(offset, "BAD_GROUP_NAME")
        group, event = text[:sep], text[sep + 1:]
        offset += sep + 1
    if not event:
        if sep < 0:
            raise log.fail(offset, "NO_EVENT_NAME")
        return group, None
    if len(event) >= MAX_EVENT_NAME_LEN:
        raise log.fail(offset, "EVENT_TOO_LONG")
    if not is_good_name(event):
        raise log.fail(offset, "BAD_EVENT_NAME")
    return group, event


def sanitize_event_name(name: str) -> str:
    """sanitize_event_name(): ':' and '.' become '_' (the first character is kept)."""
    return name[:1] + name[1:].replace(":", "_").replace(".", "_")


# ---- fetch arguments -------------------------------------------------------------------

@dataclass(frozen=True)
class Fetch:
    """One node of a fetch program. ``op``: reg (value: name), stack (N), stackp,
    retval, comm, arg (N, 0-based), edata (N: an entry argument read at the exit),
    imm (int), data (str), symbol (value: "sym[+|-off]"), deref/uderef (offset,
    ``inner`` the address)."""

    op: str
    value: int | str = 0
    inner: Fetch | None = None

    def ops(self) -> int:
        """fetch_insn slots it takes."""
        if self.op in ("deref", "uderef"):
            return 1 + (self.inner.ops() if self.inner else 0)
        return 2 if self.op == "symbol" else 1


@dataclass(frozen=True)
class ProbeArg:
    """A parsed fetch argument: ``comm`` is its text as written (type included), as
    the kernel keeps it for the listing."""

    name: str
    comm: str
    type: FetchType
    fetch: Fetch
    count: int = 0                              # array length, 0: a scalar
    bitfield: tuple[int, int] | None = None     # (width, offset) in the container
    offset: int = 0                             # in the record, after the head

    @property
    def size(self) -> int:
        return self.type.size * (self.count or 1)

    @property
    def fmttype(self) -> str:
        return self.type.fmttype if not self.count else f"{self.type.fmttype}[{self.count}]"


@dataclass
class ParseContext:
    """struct traceprobe_parse_context."""

    flags: int
    offset: int = 0
    entry_args: list[int] = field(default_factory=list)    # $argN a return probe stores at entry

    @property
    def function_entry(self) -> bool:
        return self.flags & TPARG_FL_LOC_MASK == TPARG_FL_KERNEL | TPARG_FL_FENTRY

    @property
    def function_return(self) -> bool:
        return self.flags & TPARG_FL_LOC_MASK == TPARG_FL_KERNEL | TPARG_FL_RETURN


def expand_meta_args(log: ProbeLog, args: list[str], ctx: ParseContext) -> None:
    """traceprobe_expand_meta_args() without BTF: checks the ``$arg``-prefixed words;
    ``$arg*`` needs BTF (NOSUP_BTFARG)."""
    found_star = False
    for i, arg in enumerate(args):
        if not arg.startswith("$arg"):
            continue
        log.index = i + 2
        if not (ctx.function_entry or ctx.function_return):
            raise log.fail(0, "NOFENTRY_ARGS")
        if arg[4:5].isdigit():
            continue
        if arg[4:5] != "*":
            raise log.fail(0, "BAD_VAR")
        if found_star:
            raise log.fail(0, "DOUBLE_ARGS")
        found_star = True
    if found_star:                      # query_btf_context() fails: no BTF in this kernel
        raise log.fail(0, "NOSUP_BTFARG", errno.EOPNOTSUPP)


def parse_probe_arg(log: ProbeLog, ctx: ParseContext, i: int, arg: str,
                    earlier: list[ProbeArg], record_offset: int) -> ProbeArg:
    """traceprobe_parse_probe_arg() for fetch argument ``i`` (argv word i + 2)."""
    log.index = i + 2
    ctx.offset = 0
    eq = arg.find("=")
    if eq >= 0:
        if eq > MAX_ARG_NAME_LEN:
            raise log.fail(0, "ARG_NAME_TOO_LONG")
        if eq == 0:
            raise log.fail(0, "NO_ARG_NAME")
        name, body = arg[:eq], arg[eq + 1:]
    else:
        name, body = f"arg{i + 1}", arg
    if not is_good_name(name):
        raise log.fail(0, "BAD_ARG_NAME")
    if name in RESERVED_FIELDS or any(a.name == name for a in earlier):
        raise log.fail(0, "USED_ARG_NAME")
    ctx.offset = len(arg) - len(body)
    return _parse_body(log, ctx, name, body, record_offset)


def _parse_body(log: ProbeLog, ctx: ParseContext, name: str, body: str, record_offset: int) -> ProbeArg:
    """traceprobe_parse_probe_arg_body(): length, type, value, then the store."""
    if len(body) > MAX_ARGSTR_LEN:
        raise log.fail(ctx.offset, "ARG_TOO_LONG", errno.E2BIG)
    if not body:
        raise log.fail(ctx.offset, "NO_ARG_BODY")
    value, type_text, count, ftype = _parse_type(log, ctx, body)
    fetch, used = _parse_value(log, ctx, value, 0)
    # finalize_fetch_insn()
    t_off = len(value) + 1 if type_text is not None else 0
    top = fetch.op
    if ftype.name == "symstr" and top not in ("reg", "stack", "retval", "arg", "deref", "uderef"):
        raise log.fail(ctx.offset + t_off, "BAD_SYMSTRING")
    if ftype.name in ("string", "ustring") and top not in ("deref", "uderef", "imm", "comm", "data"):
        raise log.fail(ctx.offset + t_off, "BAD_STRING")
    if not ftype.is_string and top not in ("deref", "uderef"):
        used += 1                                   # FETCH_OP_ST_RAW takes a slot
        if used >= FETCH_INSN_MAX:
            raise log.fail(ctx.offset, "TOO_MANY_OPS")
    bitfield = None
    if type_text is not None and type_text.startswith("b"):
        bitfield = _parse_bitfield(type_text, ftype)
        if bitfield is None:
            raise log.fail(ctx.offset + t_off, "BAD_BITFIELD")
    if count:
        if top not in ("deref", "uderef") and not ftype.is_string:
            raise log.fail(ctx.offset + t_off, "BAD_STRING")
        if used + 1 >= FETCH_INSN_MAX:
            raise log.fail(ctx.offset, "TOO_MANY_OPS")
    return ProbeArg(name, body, ftype, fetch, count, bitfield, record_offset)


def _parse_type(log: ProbeLog, ctx: ParseContext, body: str) -> tuple[str, str | None, int, FetchType]:
    """parse_probe_arg_type(): the ``:TYPE[N]`` suffix (cut at the first ':')."""
    colon = body.find(":")
    value, type_text, count = (body, None, 0) if colon < 0 else (body[:colon], body[colon + 1:], 0)
    if type_text is not None and "[" in type_text:
        lb = type_text.index("[")
        base = colon + 1 + lb + 1                    # offset of the count in the body
        rest = type_text[lb + 1:]
        rb = rest.find("]")
        if rb < 0:
            raise log.fail(ctx.offset + len(body), "ARRAY_NO_CLOSE")
        if rb + 1 != len(rest):
            raise log.fail(ctx.offset + base + rb + 1, "BAD_ARRAY_SUFFIX")
        number = _kstrtoul(rest[:rb], 0)
        if not number:
            raise log.fail(ctx.offset + base, "BAD_ARRAY_NUM")
        if number > MAX_ARRAY_LEN:
            raise log.fail(ctx.offset + base, "ARRAY_TOO_BIG")
        count, type_text = number, type_text[:lb]
    t_off = colon + 1 if type_text is not None else 0
    if not ctx.flags & TPARG_FL_TEVENT and (value in ("$comm", "$COMM") or value.startswith('\\"')):
        if count or (type_text is not None and type_text != "string"):
            raise log.fail(ctx.offset + t_off, "NEED_STRING_TYPE")
        return value, type_text, count, FETCH_TYPES["string"]
    ftype = find_fetch_type(type_text, ctx.flags)
    if ftype is None:
        raise log.fail(ctx.offset + t_off, "BAD_TYPE")
    return value, type_text, count, ftype


def _parse_bitfield(text: str, container: FetchType) -> tuple[int, int] | None:
    """__parse_bitfield_probe_arg(): ``b<width>@<offset>/<size>``, fitting the container."""
    m = re.match(r"b(0[xX][0-9a-fA-F]+|\d+)?@(0[xX][0-9a-fA-F]+|\d+)?/", text)
    if m is None or not m.group(1) or m.group(2) is None:
        return None
    width, offset = int(m.group(1), 0), int(m.group(2), 0)
    if width == 0 or width + offset > container.size * 8:
        return None
    return width, offset


def _parse_value(log: ProbeLog, ctx: ParseContext, arg: str, used: int) -> tuple[Fetch, int]:
    """parse_probe_arg(): the value part; returns the program and the slots it uses."""
    first = arg[:1]
    if first == "$":
        fetch = _parse_var(log, ctx, arg)
        return fetch, used + 1
    if first == "%":
        if ctx.flags & (TPARG_FL_TEVENT | TPARG_FL_FPROBE):
            log.err(ctx.offset, "BAD_VAR")             # and, ret still 0, BAD_FETCH_ARG below
            raise log.fail(ctx.offset, "BAD_FETCH_ARG")
        if arg[1:] not in X86_REGS:
            raise log.fail(ctx.offset, "BAD_REG_NAME")
        return Fetch("reg", arg[1:]), used + 1
    if first == "@":
        if arg[1:2].isdigit():
            addr = _kstrtoul(arg[1:], 0)
            if addr is None:
                raise log.fail(ctx.offset, "BAD_MEM_ADDR")
            inner, used = Fetch("imm", addr), used + 1
        elif arg[1:2] == "+":
            if ctx.flags & TPARG_FL_KERNEL:
                raise log.fail(ctx.offset, "FILE_ON_KPROBE")
            raise log.fail(ctx.offset, "BAD_FILE_OFFS")
        else:
            used += 1
            if used >= FETCH_INSN_MAX - 1:
                raise log.fail(ctx.offset, "TOO_MANY_OPS")
            inner, used = Fetch("symbol", arg[1:]), used + 1
        if used >= FETCH_INSN_MAX - 1:
            raise log.fail(ctx.offset, "TOO_MANY_OPS")
        return Fetch("deref", 0, inner), used + 1
    if first in "+-" and first:
        return _parse_deref(log, ctx, arg, used)
    if first == "\\":
        if arg[1:2] == '"':
            text = arg[2:]
            if not text.endswith('"'):
                raise log.fail(ctx.offset + 2 + len(text), "IMMSTR_NO_CLOSE")
            return Fetch("data", text[:-1]), used + 1
        value = _str_to_immediate(arg[1:])
        if value is None:
            raise log.fail(ctx.offset + 1, "BAD_IMM")
        return Fetch("imm", value), used + 1
    if first.isalpha() or first == "_":
        raise log.fail(ctx.offset, "NOSUP_BTFARG", errno.EOPNOTSUPP
                       if ctx.function_entry or ctx.function_return else errno.EINVAL)
    raise log.fail(ctx.offset, "BAD_FETCH_ARG")


def _str_to_immediate(text: str) -> int | None:
    if text[:1].isdigit():
        return _kstrtoul(text, 0)
    if text[:1] == "-":
        return _kstrtol(text, 0)
    if text[:1] == "+":
        return _kstrtol(text[1:], 0)
    return None


def _parse_var(log: ProbeLog, ctx: ParseContext, arg: str) -> Fetch:
    """parse_probe_vars(): ``$retval``, ``$stack[N]``, ``$comm``, ``$argN``."""
    var = arg[1:]
    if var.startswith("retval"):
        if not ctx.flags & TPARG_FL_RETURN:
            raise log.fail(ctx.offset, "RETVAL_ON_PROBE")
        return Fetch("retval")
    if var.startswith("stack"):
        rest = var[5:]
        if not rest:
            return Fetch("stackp")
        if rest[:1].isdigit():
            n = _kstrtoul(rest, 10)
            if n is None:
                raise log.fail(ctx.offset, "BAD_VAR")
            if ctx.flags & TPARG_FL_KERNEL and n > PARAM_MAX_STACK:
                raise log.fail(ctx.offset, "BAD_STACK_NUM")
            return Fetch("stack", n)
        raise log.fail(ctx.offset, "BAD_VAR")
    if var in ("comm", "COMM"):
        return Fetch("comm")
    if var.startswith("arg"):
        n = _kstrtoul(var[3:], 10)
        if n is None:
            raise log.fail(ctx.offset, "BAD_VAR")
        if not n or n > PARAM_MAX_STACK:
            raise log.fail(ctx.offset, "BAD_ARG_NUM")
        if ctx.function_entry:
            return Fetch("arg", n - 1 + (1 if ctx.flags & TPARG_FL_TPOINT else 0))
        if ctx.function_return:
            if n - 1 not in ctx.entry_args:          # __store_entry_arg()
                ctx.entry_args.append(n - 1)
            return Fetch("edata", n - 1)
        raise log.fail(ctx.offset, "NOFENTRY_ARGS")
    raise log.fail(ctx.offset, "BAD_VAR")


def _parse_deref(log: ProbeLog, ctx: ParseContext, arg: str, used: int) -> tuple[Fetch, int]:
    """``+|-[u]OFFS(FETCHARG)``, with the kernel's caret arithmetic (and its quirk for
    the ``u`` form, one column short)."""
    op = "deref"
    text = arg
    if text[1:2] == "u":
        op = "uderef"
        text = text[0] + text[2:]
    if text[0] == "+":
        text = text[1:]
    brace = text.find("(")
    if brace < 0:
        raise log.fail(ctx.offset, "DEREF_NEED_BRACE")
    offset = _kstrtol(text[:brace], 0)
    if offset is None:
        raise log.fail(ctx.offset, "BAD_DEREF_OFFS")
    ctx.offset += brace + 1 + (1 if text[:1] != "-" else 0)
    inner_text = text[brace + 1:]
    close = inner_text.rfind(")")
    if close < 0:
        raise log.fail(ctx.offset + len(inner_text), "DEREF_OPEN_BRACE")
    here = ctx.offset
    inner, used = _parse_value(log, ctx, inner_text[:close], used)
    ctx.offset = here
    if inner.op in ("comm", "data"):
        raise log.fail(ctx.offset, "COMM_CANT_DEREF")
    if used >= FETCH_INSN_MAX - 1:
        raise log.fail(ctx.offset, "TOO_MANY_OPS")
    return Fetch(op, offset, inner), used + 1


# ---- what a probe event's format and listing show ----------------------------------------

def print_fmt(args: list[ProbeArg], is_return: bool) -> str:
    """__set_print_fmt(): the event's print fmt."""
    head = "(%lx <- %lx)" if is_return else "(%lx)"
    fmts, refs = [], []
    for a in args:
        one = a.type.fmt.replace('"', '\\"')
        if a.count:
            fmts.append(f" {a.name}={{" + ",".join([one] * a.count) + "}")
            refs += [f"__get_str({a.name}[{k}])" if a.type.is_string else f"REC->{a.name}[{k}]"
                     for k in range(a.count)]
        else:
            fmts.append(f" {a.name}={one}")
            refs.append(f"__get_str({a.name})" if a.type.is_string else f"REC->{a.name}")
    lead = ", REC->__probe_func, REC->__probe_ret_ip" if is_return else ", REC->__probe_ip"
    return '"' + head + "".join(fmts) + '"' + lead + "".join(f", {r}" for r in refs)
