"""kernel/trace/trace_events_hist.c and tracing_map.c of Linux 6.12: hist triggers.

``echo 'hist:keys=common_pid.execname:vals=hitcount:sort=hitcount.descending' >
events/syscalls/sys_enter_read/trigger`` aggregates the event's records into a
map (tracing_map_insert(), hist_trigger_elt_update()) and ``events/.../hist``
prints it (hist_show()): one line per key, then the totals.

Emulated as the kernel parses them (event_hist_trigger_parse(),
parse_hist_trigger_attrs(), create_val_fields(), create_key_fields(),
parse_field(), create_sort_keys()):

* ``keys=`` up to 3 fields (compound keys; strings; ``common_cpu``;
  ``stacktrace``/``common_stacktrace``), ``vals=`` hitcount and up to 2 fields or
  constants, ``sort=`` up to 2 keys or values with ``.ascending``/``.descending``,
  ``size=`` (a power of two, 128..131072), ``pause``, ``cont``, ``clear``,
  ``nohitcount``, ``if FILTER``, ``!hist:...`` to remove;
* the modifiers ``.hex .sym .sym-offset .execname .syscall .log2 .buckets=N
  .percent .graph .stacktrace`` with the kernel's rules on where each is allowed
  (6.12 refuses ``.percent`` and ``.graph`` on values too, though its
  histogram.rst shows ``vals=hitcount.percent``: the lab does the same);
* the kernel's error messages and caret positions in ``error_log`` (``errpos()``
  is a strstr() of the failing token in the command, quirks included), and its
  errnos where it logs nothing;
* the map's limits: at most ``size`` entries, the rest counted as Dropped.

Not emulated (the write fails with EOPNOTSUPP and says so): variables and
``$var`` references, expressions, ``common_timestamp``, ``name=`` (shared
histograms), ``clock=`` and the onmatch/onmax/onchange actions that build on them.

Sorting ties: the kernel sorts the map's buckets (hash order) with an unstable
heapsort, so equal entries come in no defined order; the lab keeps first-hit
order for them.
"""

from __future__ import annotations

import errno
import html
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cmp_to_key
from typing import Any

from ..formats.format_file import EventFormat
from .trace_events_filter import EventFilter, find_field
from .trace_events_trigger import kstrtoul0

__all__ = ["HIST_ERRORS", "HistContext", "HistTrigger", "parse_hist"]

#: enum hist_errors' messages, in order (the error_log text of each code)
HIST_ERRORS = (
    "No error", "Variable already defined",
    "Variable name not unique, need to use fully qualified name (subsys.event.var) for variable",
    "Too many variables defined", "Malformed assignment",
    "Named hist trigger doesn't match existing named trigger (includes variables)",
    "Hist trigger already exists", "Can't clear or continue a nonexistent hist trigger",
    "Couldn't set trace_clock", "Invalid field modifier", "Too many subexpressions (3 max)",
    "Timestamp units in expression don't match", "Too many field variables defined",
    "Event file not found", "Matching event histogram not found",
    "Couldn't create histogram for field", "Couldn't find synthetic variable",
    "Couldn't find synthetic event", "Param type doesn't match synthetic event field type",
    "Param count doesn't match synthetic event field count", "Couldn't parse field variable",
    "Couldn't create or find variable", "For onmax(x) or onchange(x), x must be a variable",
    "Couldn't find onmax or onchange variable", "Couldn't create onmax or onchange variable",
    "Couldn't create field variable", "Too many action params", "Couldn't find param",
    "Invalid action param", "No action found", "No params found for save()",
    "Can't have more than one save() action per hist", "Handler doesn't support action",
    "No closing paren found", "Missing subsystem", "Invalid subsystem or event name",
    "Using variable references in keys not supported", "Couldn't find variable",
    "Couldn't find field", "Empty assignment", "Invalid sort modifier", "Empty sort field",
    "Too many sort fields (Max = 2)", "Sort field must be a key or a val",
    "String type can not be an operand in expression", "Expecting numeric literal",
    "Unary minus not supported in sub-expressions", "Division by zero",
    "Non-hitcount value is required for 'nohitcount'",
)
TRIGGER_EEXIST, TRIGGER_ENOENT_CLEAR = 6, 7
BAD_FIELD_MODIFIER, FIELD_NOT_FOUND, EMPTY_ASSIGNMENT = 9, 38, 39
INVALID_SORT_MODIFIER, EMPTY_SORT_FIELD, TOO_MANY_SORT_FIELDS, INVALID_SORT_FIELD = 40, 41, 42, 43
EXPECT_NUMBER, NEED_NOHC_VAL = 45, 48

# enum hist_field_flags
FL_HITCOUNT, FL_KEY, FL_STRING, FL_HEX = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FL_SYM, FL_SYM_OFFSET, FL_EXECNAME, FL_SYSCALL = 1 << 4, 1 << 5, 1 << 6, 1 << 7
FL_STACKTRACE, FL_LOG2, FL_CPU, FL_BUCKET = 1 << 8, 1 << 9, 1 << 15, 1 << 17
FL_CONST, FL_PERCENT, FL_GRAPH = 1 << 18, 1 << 19, 1 << 20
VAL_REFUSED = (FL_GRAPH | FL_PERCENT | FL_BUCKET | FL_LOG2 | FL_SYM | FL_SYM_OFFSET | FL_SYSCALL
               | FL_STACKTRACE)
MODIFIERS = ((FL_HEX, "hex"), (FL_SYM, "sym"), (FL_SYM_OFFSET, "sym-offset"), (FL_EXECNAME, "execname"),
             (FL_SYSCALL, "syscall"), (FL_LOG2, "log2"), (FL_BUCKET, "buckets"), (FL_PERCENT, "percent"),
             (FL_GRAPH, "graph"), (FL_STACKTRACE, "stacktrace"))

TRACING_MAP_BITS_DEFAULT, TRACING_MAP_BITS_MIN, TRACING_MAP_BITS_MAX = 11, 7, 17
TRACING_MAP_KEYS_MAX = TRACING_MAP_VALS_MAX = 3
TRACING_MAP_SORT_KEYS_MAX = 2
MAX_FILTER_STR_VAL = 256
HIST_STACKTRACE_DEPTH = 16
HIST_KEY_SIZE_MAX = MAX_FILTER_STR_VAL + 8 * HIST_STACKTRACE_DEPTH
U64 = (1 << 64) - 1


class HistError(Exception):
    """A refused hist command: the errno, and the error_log entry when the kernel writes one."""

    def __init__(self, err: int, code: int | None = None, pos: int = 0, text: str = "") -> None:
        super().__init__(text or os.strerror(err))
        self.errno, self.code, self.pos = err, code, pos


def _unsupported(what: str) -> HistError:
    return HistError(errno.EOPNOTSUPP, text=f"ftracelab does not emulate {what} in hist triggers "
                     "(keys, vals, sort, size, modifiers, pause/cont/clear and filters work)")


@dataclass
class HistField:
    """struct hist_field: where the value comes from, its flags and print name."""

    name: str                       # hist_field_name()
    flags: int
    offset: int = 0                 # in the record (event fields)
    size: int = 8
    signed: bool = False
    kind: str = "other"             # the filter's field kind (strings: static/dyn/rdyn)
    buckets: int = 0
    constant: int = 0

    @property
    def spec(self) -> str:
        """hist_field_print(): as the trigger line shows it."""
        text = str(self.constant) if self.flags & FL_CONST else (
            "common_cpu" if self.flags & FL_CPU else self.name)
        mod = next((m for fl, m in MODIFIERS if self.flags & fl), None)
        if mod is not None and not self.flags & FL_STACKTRACE:
            text += "." + mod
        return text + (f"={self.buckets}" if self.buckets else "")


@dataclass
class HistContext:
    """What a hist trigger needs from its event and the lab."""

    fmt: EventFormat
    log: Callable[[str, int, int], None]            # hist_err(): command, code, position
    compile_filter: Callable[[str], EventFilter]
    syscall_name: Callable[[int], str | None]
    sym: Callable[[int, bool], str]                 # %ps (False) / %pS (True)


@dataclass
class _Elt:
    """struct tracing_map_elt: the key, the sums, the comm saved at insertion."""

    key: tuple[Any, ...]
    sums: list[int]
    comm: str
    order: int


@dataclass(eq=False)
class HistTrigger:
    """struct hist_trigger_data with its event_trigger_data and tracing_map."""

    vals: list[HistField]           # [0] is hitcount
    keys: list[HistField]
    sort_keys: list[tuple[int, bool]]   # (field index: vals then keys, descending)
    map_bits: int = TRACING_MAP_BITS_DEFAULT
    no_hitcount: bool = False
    paused: bool = False
    attrs: tuple[bool, bool, bool] = (False, False, False)   # pause, cont, clear
    filter_str: str | None = None
    filter: EventFilter | None = None
    ctx: HistContext | None = None
    entries: dict[tuple[Any, ...], _Elt] = field(default_factory=dict)
    hits: int = 0
    drops: int = 0
    cmd: str = "hist"
    count: int = -1

    # ---- recording: event_hist_trigger() ------------------------------------------------
    def needs_stack(self) -> bool:
        return any(k.flags & FL_STACKTRACE for k in self.keys)

    def update(self, rec: bytes, base: int, cpu: int, comm: str, stack: list[int]) -> None:
        """One record: its key, tracing_map_insert(), the sums (hist_trigger_elt_update())."""
        key = tuple(self._value(k, rec, base, cpu, stack) for k in self.keys)
        elt = self.entries.get(key)
        if elt is None:
            if len(self.entries) >= 1 << self.map_bits:
                self.drops += 1                   # the map is full: a new key is dropped
                return
            elt = self.entries[key] = _Elt(key, [0] * len(self.vals), comm, len(self.entries))
        self.hits += 1
        for i, v in enumerate(self.vals):
            elt.sums[i] = (elt.sums[i] + self._value(v, rec, base, cpu, stack)) & U64

    @staticmethod
    def _value(f: HistField, rec: bytes, base: int, cpu: int, stack: list[int]) -> Any:
        if f.flags & FL_HITCOUNT:
            return 1
        if f.flags & FL_CONST:
            return f.constant
        if f.flags & FL_STACKTRACE:
            return tuple(stack[:HIST_STACKTRACE_DEPTH])
        if f.flags & FL_CPU:
            val = cpu
        elif f.flags & FL_STRING:
            if not f.flags & FL_KEY:             # a string as a value sums its address
                return base + f.offset
            raw = rec[f.offset:f.offset + f.size]
            if f.kind != "static_string":
                loc = int.from_bytes(rec[f.offset:f.offset + 4], "little")
                at = (f.offset + 4 if f.kind == "rdyn_string" else 0) + (loc & 0xFFFF)
                raw = rec[at:at + min(loc >> 16, MAX_FILTER_STR_VAL - 1)]
            return raw.split(b"\0", 1)[0]
        else:
            val = int.from_bytes(rec[f.offset:f.offset + f.size], "little", signed=f.signed) & U64
        if f.flags & FL_LOG2:                    # ilog2(roundup_pow_of_two(val))
            return 0 if val <= 1 or val > 1 << 63 else (val - 1).bit_length()
        if f.flags & FL_BUCKET:
            return val // f.buckets * f.buckets
        return val

    def clear(self) -> None:
        """hist_clear(): tracing_map_clear()."""
        self.entries.clear()
        self.hits = self.drops = 0

    # ---- output -------------------------------------------------------------------------
    def line(self) -> str:
        """event_hist_trigger_print(): the trigger file's line."""
        vals = ([] if self.no_hitcount else ["hitcount"]) + [v.spec for v in self.vals[1:]]
        fields = self.vals + self.keys
        sort = ",".join(("hitcount" if i == 0 else fields[i].spec) + (".descending" if d else "")
                        for i, d in self.sort_keys)
        keys = ",".join("common_stacktrace" if k.flags & FL_STACKTRACE else k.spec for k in self.keys)
        text = f"hist:keys={keys}:vals={','.join(vals)}:sort={sort}:size={1 << self.map_bits}"
        text += ":nohitcount" if self.no_hitcount else ""
        text += f" if {self.filter_str}" if self.filter_str is not None else ""
        return text + (" [paused]" if self.paused else " [active]") + "\n"

    def show(self, n: int) -> str:
        """hist_trigger_show(): the header, the sorted entries, the totals."""
        out = ["\n\n" if n else "", "# event histogram\n#\n# trigger info: ", self.line(), "#\n\n"]
        elts = self._sorted()
        out.extend(self._entry(elt) for elt in elts)
        out.append(f"\nTotals:\n    Hits: {self.hits}\n    Entries: {len(elts)}\n    Dropped: {self.drops}\n")
        return "".join(out)

    def _repr_html_(self) -> str:
        return f"<b>hist trigger</b><pre>{html.escape(self.show(0))}</pre>"

    def _sorted(self) -> list[_Elt]:
        """tracing_map_sort_entries(): the first sort key, then the second among equals."""
        fields = self.vals + self.keys

        def item(e: _Elt, idx: int) -> Any:
            if idx < len(self.vals):
                return e.sums[idx]
            f, v = fields[idx], e.key[idx - len(self.vals)]
            if f.flags & FL_STACKTRACE:
                return 0                            # tracing_map_cmp_none()
            if isinstance(v, int) and f.signed and not f.flags & FL_CPU:
                bits = 8 * f.size
                v &= (1 << bits) - 1
                v -= (v >> (bits - 1)) << bits      # tracing_map_cmp_sNN() on the key bytes
            return v

        def cmp(a: _Elt, b: _Elt) -> int:
            for idx, desc in self.sort_keys:
                x, y = item(a, idx), item(b, idx)
                c = int(x > y) - int(x < y)
                if c:
                    return -c if desc else c
            return a.order - b.order
        return sorted(self.entries.values(), key=cmp_to_key(cmp))

    def _entry(self, elt: _Elt) -> str:
        """hist_trigger_entry_print()."""
        text = self._key_text(elt)
        if not self.no_hitcount:
            text += _val_text(elt.sums[0], "hitcount", 0)
        for i, v in enumerate(self.vals[1:], 1):
            text += " " + _val_text(elt.sums[i], v.name, v.flags)
        return text + "\n"

    def _key_text(self, elt: _Elt) -> str:
        """hist_trigger_print_key()."""
        assert self.ctx is not None
        parts, multiline = [], False
        for f, v in zip(self.keys, elt.key, strict=True):
            if f.flags & FL_HEX:
                parts.append(f"{f.name}: {v:x}")
            elif f.flags & (FL_SYM | FL_SYM_OFFSET):
                width = 55 if f.flags & FL_SYM_OFFSET else 45
                parts.append(f"{f.name}: [{v:x}] {self.ctx.sym(v, bool(f.flags & FL_SYM_OFFSET)):<{width}}")
            elif f.flags & FL_EXECNAME:
                parts.append(f"{f.name}: {elt.comm:<16}[{v:10d}]")
            elif f.flags & FL_SYSCALL:
                parts.append(f"{f.name}: {self.ctx.syscall_name(v) or 'unknown_syscall':<30}[{v:3d}]")
            elif f.flags & FL_STACKTRACE:
                frames = "".join(f"{' ' * 9}{self.ctx.sym(a, True)}\n" for a in v)
                parts.append("common_stacktrace:\n" + frames)
                multiline = True
            elif f.flags & FL_LOG2:
                parts.append(f"{f.name}: ~ 2^{v:<2d}")
            elif f.flags & FL_BUCKET:
                parts.append(f"{f.name}: ~ {v}-{v + f.buckets - 1}")
            elif f.flags & FL_STRING:
                parts.append(f"{f.name}: {v.decode('latin-1'):<50}")
            else:
                parts.append(f"{f.name}: {v:10d}")
        return "{ " + ", ".join(parts) + ("" if multiline else " ") + "}"


def _val_text(val: int, name: str, flags: int) -> str:
    """hist_trigger_print_val() (its .percent and .graph forms are unreachable in 6.12,
    whose __create_val_field() refuses both modifiers on values)."""
    return f" {name}: {val:10x}" if flags & FL_HEX else f" {name}: {val:10d}"


# ---- parsing: event_hist_trigger_parse() -------------------------------------------------

class _Parser:
    def __init__(self, cmd: str, ctx: HistContext) -> None:
        self.cmd, self.ctx = cmd, ctx

    def fail(self, code: int, token: str | None, err: int = errno.EINVAL) -> HistError:
        """hist_err() with errpos(): the first occurrence of the token in the command."""
        pos = 0 if token is None else max(self.cmd.find(token), 0)
        self.ctx.log(self.cmd, code, pos)
        return HistError(err, code, pos)

    def field(self, text: str, flags: int) -> HistField:
        """parse_expr() -> parse_atom() -> parse_field() + create_hist_field()."""
        if text.startswith("$"):
            raise _unsupported("variables")
        if any(op in text for op in "+-*/"):
            raise _unsupported("expressions")
        if text[:1].isdigit():
            value = kstrtoul0(text)
            if value is None or value > U64:
                raise self.fail(EXPECT_NUMBER, text)
            return HistField("", flags | FL_CONST, constant=value)
        if text.count(".") >= 2:            # SYSTEM.EVENT.VAR: no such variable, so the last part
            text = text.split(".", 2)[2]
        name, _, modifier = text.partition(".")
        buckets = 0
        if "." in text:
            flags, buckets = self._modifier(name, modifier, flags)
        if name == "common_timestamp":
            raise _unsupported("common_timestamp")
        if name == "common_stacktrace":
            return HistField("common_stacktrace", flags | FL_STACKTRACE, size=8 * HIST_STACKTRACE_DEPTH)
        if name == "common_cpu":
            return HistField("common_cpu", flags | FL_CPU, size=4, buckets=buckets)
        if name == "hitcount":
            return HistField("hitcount", flags | FL_HITCOUNT, buckets=buckets)
        f = find_field(self.ctx.fmt, name)
        if f is None or (not f.size and f.kind not in ("cpu", "stacktrace")):
            raise self.fail(FIELD_NOT_FOUND, name)
        if f.kind == "cpu":                  # "cpu" and "CPU" keep their name (printed so)
            return HistField(f.name, flags | FL_CPU, size=4, buckets=buckets)
        if f.kind == "stacktrace":
            return HistField("common_stacktrace", flags | FL_STACKTRACE, size=8 * HIST_STACKTRACE_DEPTH)
        if f.kind in ("static_string", "dyn_string", "rdyn_string"):
            size = f.size if f.kind == "static_string" else MAX_FILTER_STR_VAL
            return HistField(f.name, flags | FL_STRING, f.offset, size, False, f.kind, buckets)
        if f.size not in (1, 2, 4, 8):         # select_value_fn() has none: create fails
            raise HistError(errno.ENOMEM)
        return HistField(f.name, flags, f.offset, f.size, f.signed, f.kind, buckets)

    def _modifier(self, name: str, modifier: str, flags: int) -> tuple[int, int]:
        simple = {"hex": FL_HEX, "sym": FL_SYM, "symXoffset": FL_SYM_OFFSET, "syscall": FL_SYSCALL,
                  "stacktrace": FL_STACKTRACE, "log2": FL_LOG2}
        if modifier in simple:
            return flags | simple[modifier], 0
        if modifier == "execname" and name == "common_pid":
            return flags | FL_EXECNAME, 0
        if modifier == "usecs":
            raise _unsupported("common_timestamp")
        if modifier.startswith("bucket"):
            rest = modifier[6:]
            rest = rest[1:] if rest.startswith("s") else rest
            if rest.startswith("="):
                n = kstrtoul0(rest[1:])
                if n:
                    return flags | FL_BUCKET, n
            raise self.fail(BAD_FIELD_MODIFIER, rest[1:] if rest.startswith("=") else rest)
        if modifier.startswith(("percent", "graph")) and not flags & FL_KEY:
            return flags | (FL_PERCENT if modifier.startswith("percent") else FL_GRAPH), 0
        raise self.fail(BAD_FIELD_MODIFIER, modifier)

    def vals(self, text: str | None, no_hitcount: bool) -> list[HistField]:
        """create_val_fields(): hitcount first, then at most two more."""
        vals = [HistField("hitcount", FL_HITCOUNT)]
        rest = text
        seen_hitcount = False
        for _ in range(TRACING_MAP_VALS_MAX):
            if rest is None or len(vals) >= TRACING_MAP_VALS_MAX:
                break
            tok, sep, after = rest.partition(",")
            rest = after if sep else None
            if tok == "hitcount" and not seen_hitcount:
                seen_hitcount = True
                continue
            v = self.field(tok, 0)
            if v.flags & VAL_REFUSED:
                raise self.fail(BAD_FIELD_MODIFIER, tok)
            vals.append(v)
        if rest is not None and rest != "hitcount":
            raise HistError(errno.EINVAL)
        if len(vals) == 1 and no_hitcount:
            raise self.fail(NEED_NOHC_VAL, None, errno.ENOENT)
        return vals

    def keys(self, text: str) -> list[HistField]:
        """create_key_fields(): at most three, their sizes 8-byte aligned within the key."""
        keys: list[HistField] = []
        rest: str | None = text
        size = 0
        while rest is not None and len(keys) < TRACING_MAP_KEYS_MAX:
            tok, sep, after = rest.partition(",")
            rest = after if sep else None
            if tok == "stacktrace":
                k = HistField("common_stacktrace", FL_KEY | FL_STACKTRACE, size=8 * HIST_STACKTRACE_DEPTH)
            else:
                k = self.field(tok, FL_KEY)
            size += (k.size + 7) // 8 * 8
            if size > HIST_KEY_SIZE_MAX:
                raise HistError(errno.EINVAL)
            keys.append(k)
        if rest is not None:
            raise HistError(errno.EINVAL)
        return keys

    def sort(self, text: str | None, vals: list[HistField], keys: list[HistField]) -> list[tuple[int, bool]]:
        """create_sort_keys(): hitcount ascending unless told."""
        if text is None:
            return [(0, False)]
        out: list[tuple[int, bool]] = []
        rest: str | None = text
        for i in range(TRACING_MAP_SORT_KEYS_MAX):
            if rest is None:
                break
            tok, sep, after = rest.partition(",")
            rest = after if sep else None
            if not tok:
                raise self.fail(EMPTY_SORT_FIELD, "sort=")
            if i == TRACING_MAP_SORT_KEYS_MAX - 1 and rest is not None:
                raise self.fail(TOO_MANY_SORT_FIELDS, "sort=")
            name, dot, modifier = tok.partition(".")
            if not name:
                raise self.fail(EMPTY_SORT_FIELD, "sort=")
            fields = vals + keys
            idx = 0 if name == "hitcount" else next(
                (j for j in range(1, len(fields)) if fields[j].name == name), None)
            if idx is None:
                raise self.fail(INVALID_SORT_FIELD, name)
            if dot and modifier not in ("descending", "ascending"):
                raise self.fail(INVALID_SORT_MODIFIER, modifier)
            out.append((idx, modifier == "descending"))
        return out


def _split_filter(pf: str) -> tuple[str, str | None]:
    """The trigger from its filter (``k:v [if filter]``, blanks allowed in the trigger)."""
    p = 0
    while True:
        p = pf.find("if", p)
        if p < 0:
            return pf, None
        if p == 0:
            raise HistError(errno.EINVAL)
        if pf[p - 1] not in " \t":
            p += 1
            continue
        if p >= len(pf) - 3:
            raise HistError(errno.EINVAL)
        if pf[p + 2] not in " \t":
            p += 1
            continue
        return pf[:p - 1].strip(), pf[p:].strip()


def parse_hist(param_and_filter: str | None, ctx: HistContext) -> HistTrigger:
    """event_hist_trigger_parse() up to the registration: the trigger, or HistError."""
    if not param_and_filter:
        raise HistError(errno.EINVAL)
    p = _Parser("hist:" + param_and_filter, ctx)
    param, filt = _split_filter(param_and_filter)
    param = param.replace(".sym-offset", ".symXoffset")
    keys_str = vals_str = sort_str = None
    map_bits, flags = TRACING_MAP_BITS_DEFAULT, {"nohitcount": False, "pause": False, "cont": False,
                                                 "clear": False}
    for tok in param.split(":"):            # parse_hist_trigger_attrs()
        if "=" in tok:
            lhs, _, rhs = tok.partition("=")
            if not rhs:
                raise p.fail(EMPTY_ASSIGNMENT, tok)
            if lhs in ("key", "keys"):
                keys_str = rhs
            elif lhs in ("val", "vals", "values"):
                vals_str = rhs
            elif lhs == "sort":
                sort_str = rhs
            elif lhs == "size":
                size = kstrtoul0(rhs)
                if size is None:
                    raise HistError(errno.EINVAL)
                bits = max(size - 1, 0).bit_length()  # ilog2(roundup_pow_of_two(size))
                if not TRACING_MAP_BITS_MIN <= bits <= TRACING_MAP_BITS_MAX:
                    raise HistError(errno.EINVAL)
                map_bits = bits
            elif lhs in ("name", "clock"):
                raise _unsupported(f"{lhs}=")
            else:
                raise _unsupported("variables")
        elif tok in ("nohitcount", "NOHC"):
            flags["nohitcount"] = True
        elif tok in ("pause", "clear"):
            flags[tok] = True
        elif tok in ("cont", "continue"):
            flags["cont"] = True
        elif tok.startswith(("onmatch(", "onmax(", "onchange(")):
            raise _unsupported("actions")
        else:
            raise HistError(errno.EINVAL)
    if keys_str is None:
        raise HistError(errno.EINVAL)
    vals = p.vals(vals_str, flags["nohitcount"])
    keys = p.keys(keys_str)
    trigger = HistTrigger(vals, keys, p.sort(sort_str, vals, keys), map_bits, flags["nohitcount"],
                          attrs=(flags["pause"], flags["cont"], flags["clear"]), ctx=ctx)
    if filt is not None:                    # set_trigger_filter(): "if" and a blank first
        trigger.filter_str = filt[3:]       # after "if" and the blank _split_filter() found
        trigger.filter = ctx.compile_filter(trigger.filter_str)
        if trigger.filter.error is not None:
            raise HistError(trigger.filter.error.errno)
    return trigger


def same_hist(a: HistTrigger, b: HistTrigger) -> bool:
    """hist_trigger_match(): same fields and flags, sort keys and filter (size aside)."""
    def shape(t: HistTrigger) -> tuple[Any, ...]:
        return (tuple((f.name, f.flags, f.size, f.signed) for f in t.vals + t.keys), tuple(t.sort_keys),
                t.filter_str)
    return shape(a) == shape(b)


def register_hist(triggers: list[Any], new: HistTrigger, remove: bool, log: Callable[[int], None]) -> None:
    """The removal, pause/cont/clear of a matching trigger (existing_hist_update_only()),
    or hist_register_trigger(): EEXIST for a match, ENOENT for cont/clear of none."""
    match = next((t for t in triggers if isinstance(t, HistTrigger) and same_hist(t, new)), None)
    pause, cont, clear = new.attrs
    if remove:
        if match is not None:
            triggers.remove(match)
        return
    if match is not None and (pause or cont or clear):
        if pause:
            match.paused = True
        elif cont:
            match.paused = False
        else:
            match.clear()
        return
    if match is not None:
        log(TRIGGER_EEXIST)
        raise HistError(errno.EEXIST, TRIGGER_EEXIST)
    if cont or clear:
        log(TRIGGER_ENOENT_CLEAR)
        raise HistError(errno.ENOENT, TRIGGER_ENOENT_CLEAR)
    new.paused = pause
    triggers.insert(0, new)


def hist_text(triggers: list[Any]) -> str:
    """hist_show(): every hist trigger of the event, newest first."""
    return "".join(t.show(n) for n, t in enumerate(t for t in triggers if isinstance(t, HistTrigger)))
