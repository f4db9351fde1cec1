"""kernel/trace/trace_events_filter.c of Linux 6.12: event filters, the text of
``events/<sys>/<event>/filter``.

Parsing is the kernel's, quirks included: calc_stack() first (parentheses and
quotes, with their own errnos), then predicate_parse() left to right, with each
predicate (``FIELD[.ustring][.function] OP VALUE``) read by parse_pred(), whose
errors are reported one column right of the offending character. A failed write
leaves the event unfiltered and the filter file showing the text, a caret and
``parse_error: <message>``; error_log gets an ``event filter parse error`` entry.

Matching (filter_match_preds()) works on a record's bytes and the event's format:
numbers compare at the field's width (``==``/``!=`` truncated, orderings signed or
not by the field), strings exactly or by ``~`` globs with filter_parse_regex()'s
pattern kinds (including the ``*suffix`` quirk on fixed ``char[N]`` fields), and
the pseudo fields ``cpu`` and ``comm`` read the CPU and task at the time.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..formats.format_file import EventFormat, FormatField

__all__ = ["FILTER_ERRORS", "EventFilter", "FilterError", "parse_filter"]

#: err_text[] of trace_events_filter.c, in order
FILTER_ERRORS = (
    "No error", "Invalid operator", "Too many '('", "Too few '('", "Missing matching quote",
    "Missing '{'", "Missing '}'", "Operand too long", "Expecting string field", "Expecting numeric field",
    "Illegal operation for field type", "Field not found", "Illegal integer value",
    "Couldn't find or set field in one of a subsystem's events", "Too many terms in predicate expression",
    "Meaningless filter expression", "Invalid cpulist", "Only 'ip' field is supported for function trace",
    "Invalid value (did you forget quotes)?", "Function not found", "Error", "No filter found")
_E = {name: i for i, name in enumerate((
    "NONE", "INVALID_OP", "TOO_MANY_OPEN", "TOO_MANY_CLOSE", "MISSING_QUOTE", "MISSING_BRACE_OPEN",
    "MISSING_BRACE_CLOSE", "OPERAND_TOO_LONG", "EXPECT_STRING", "EXPECT_DIGIT", "ILLEGAL_FIELD_OP",
    "FIELD_NOT_FOUND", "ILLEGAL_INTVAL", "BAD_SUBSYS_FILTER", "TOO_MANY_PREDS", "INVALID_FILTER",
    "INVALID_CPULIST", "IP_FIELD_ONLY", "INVALID_VALUE", "NO_FUNCTION", "ERRNO", "NO_FILTER"))}
OPS = ("~", "!=", "==", "<=", "<", ">=", ">", "&")
MAX_FILTER_STR_VAL = 256
COMMON = (FormatField("unsigned short", "common_type", 0, 2, False),
          FormatField("unsigned char", "common_flags", 2, 1, False),
          FormatField("unsigned char", "common_preempt_count", 3, 1, False),
          FormatField("int", "common_pid", 4, 4, True))


class FilterError(Exception):
    """A filter the kernel refuses: ``code`` indexes FILTER_ERRORS (0: no message
    recorded, "Error: (0)"), ``pos`` is the raw error position, ``errno`` the write's."""

    def __init__(self, code: int, pos: int, err: int) -> None:
        super().__init__(FILTER_ERRORS[code] if code else "Error: (0)")
        self.code, self.pos, self.errno = code, pos, err


# ---- fields -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Field:
    name: str
    kind: str           # other, static_string, dyn_string, rdyn_string, ptr_string, comm, cpu, stacktrace
    offset: int = 0
    size: int = 0
    signed: bool = False

    @property
    def is_string(self) -> bool:
        return self.kind in ("static_string", "dyn_string", "rdyn_string", "ptr_string", "comm")


def field_kind(f: FormatField) -> str:
    """filter_assign_type() on the field's type text."""
    t = f.type + ("[]" if f.array_len is not None else "")
    if f.data_loc:
        return "dyn_string" if "char" in f.type else "other"
    if f.rel_loc:
        return "rdyn_string" if "char" in f.type else "other"
    if "[" in t and "char" in t:
        return "static_string"
    if f.type in ("char *", "const char *"):
        return "ptr_string"
    return "other"


def find_field(fmt: EventFormat, name: str) -> _Field | None:
    """trace_find_event_field(): the event's fields, the generic ones, the common ones."""
    for f in fmt.fields:
        if f.name == name and f.name not in {c.name for c in COMMON}:
            return _Field(f.name, field_kind(f), f.offset, f.size, f.signed)
    if name in ("CPU", "cpu", "common_cpu"):
        return _Field(name, "cpu", 0, 0, True)
    if name in ("COMM", "comm"):
        return _Field(name, "comm")
    if name in ("stacktrace", "STACKTRACE"):
        return _Field(name, "stacktrace")
    for f in COMMON:
        if f.name == name:
            return _Field(f.name, "other", f.offset, f.size, f.signed)
    return None


# ---- parsing ----------------------------------------------------------------------------

def _isalnum(c: str) -> bool:
    """isalnum() of the kernel's ctype (Latin-1 letters too); False past the end."""
    latin1_letter = "\xc0" <= c <= "\xff" and c not in "\xd7\xf7"
    return len(c) == 1 and ((c.isascii() and c.isalnum()) or latin1_letter)


def _isspace(c: str) -> bool:
    return len(c) == 1 and c in " \t\n\v\f\r\xa0"


def _calc_stack(s: str) -> int:
    """calc_stack(): balance and quotes, before anything else; the number of predicates."""
    depth, quote, last_quote, preds, i = 0, "", -1, 0, 0
    while i < len(s):
        c = s[i]
        if quote:
            if c == quote:
                quote = ""
        elif _isspace(c):
            pass
        elif c in "'\"":
            quote, last_quote = c, i
            preds += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                raise FilterError(_E["TOO_MANY_CLOSE"], i, errno.EPERM)
            depth -= 1
        elif c in "&|" and s[i + 1:i + 2] == c:
            i += 1
            preds += 1                                  # the kernel counts the pair's second char
        else:
            preds += 1
        i += 1
    if quote:
        raise FilterError(_E["MISSING_QUOTE"], last_quote, errno.ESRCH)
    if depth:
        pos, level, q = 0, 0, ""
        for j in range(len(s) - 1, 0, -1):
            c = s[j]
            if q:
                q = "" if c == q else q
            elif c in "'\"":
                q = c
            elif c == ")":
                level += 1
            elif c == "(":
                if level == 0:
                    pos = j
                    break
                level -= 1
        raise FilterError(_E["TOO_MANY_OPEN"], pos, errno.ENOENT)
    return preds


@dataclass(frozen=True)
class _Pred:
    field: _Field
    op: str
    value: Any          # int, str pattern, (kind, pattern) for globs, cpu set, (start, end) for .function
    mode: str = ""      # "num", "str", "glob:<kind>", "cpus", "func"
    neg: bool = False


def _kstrto(text: str, signed: bool) -> int | None:
    neg = text.startswith("-")
    body = text[1:] if neg else text
    if neg and not signed:
        return None
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", body):
        v = int(body, 16)
    elif re.fullmatch(r"0[0-7]*", body):
        v = int(body, 8)
    elif re.fullmatch(r"[1-9][0-9]*", body):
        v = int(body)
    else:
        return None
    v = -v if neg else v
    lo, hi = (-(1 << 63), (1 << 63) - 1) if signed else (0, (1 << 64) - 1)
    return v if lo <= v <= hi else None


def _regex_kind(pat: str) -> tuple[str, str, bool]:
    """filter_parse_regex(): (kind, pattern, inverted) of a ``~`` pattern."""
    neg = pat.startswith("!")
    if neg:
        pat = pat[1:]
    if pat[:1].isdigit():
        return "full", pat, neg
    kind = "full"
    for k, c in enumerate(pat):
        if c == "*":
            if k == 0:
                kind = "end"
            elif k == len(pat) - 1:
                kind = "middle" if kind == "end" else "front"
                pat = pat[:-1]
                break
            else:
                return "glob", pat, neg
        elif c in "[?\\":
            return "glob", pat, neg
    if kind in ("end", "middle"):
        pat = pat[1:]
    return kind, pat, neg


def _cpulist(text: str, nr_cpus: int) -> set[int] | None:
    """cpulist_parse(): N, a-b, a-b:used/group, all; ',' or blanks between."""
    cpus: set[int] = set()
    for region in re.split(r"[,\s]+", text):
        if not region:
            continue
        region = region.replace("all", f"0-{nr_cpus - 1}").replace("N", str(nr_cpus - 1))
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+)/(\d+))?)?", region)
        if m is None:
            return None
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        used, group = (int(m.group(3)), int(m.group(4))) if m.group(3) else (1, 1)
        if a > b or group == 0 or used > group or b >= nr_cpus:
            return None
        cpus |= {c for c in range(a, b + 1) if (c - a) % group < used}
    return cpus


class _Parser:
    def __init__(self, s: str, fmt: EventFormat, nr_cpus: int,
                 lookup: Callable[[str], tuple[int, int] | None]) -> None:
        self.s, self.fmt, self.nr_cpus, self.lookup = s, fmt, nr_cpus, lookup

    def parse(self) -> Any:
        """predicate_parse(): || of && of [!]( ... ) or predicates."""
        self.i = 0
        self.seen = False
        tree = self._or(top=True)
        if not self.seen:
            raise FilterError(_E["NO_FILTER"], len(self.s), errno.EINVAL)
        return tree

    def _ws(self) -> None:
        while self.i < len(self.s) and _isspace(self.s[self.i]):
            self.i += 1

    def _at_end_after_ops(self) -> bool:
        """Only ``!`` and blanks left: a dangling operator at the end is ignored."""
        return all(c == "!" or _isspace(c) for c in self.s[self.i:])

    def _or(self, top: bool = False) -> Any:
        left = self._and()
        while self.s.startswith("||", self.i):
            self.i += 2
            if self._at_end_after_ops():
                self.i = len(self.s)
                return left
            left = ("or", left, self._and())
        return left

    def _and(self) -> Any:
        left = self._unary()
        while self.s.startswith("&&", self.i):
            self.i += 2
            if self._at_end_after_ops():
                self.i = len(self.s)
                return left
            left = ("and", left, self._unary())
        return left

    def _unary(self) -> Any:
        self._ws()
        s = self.s
        if self.i < len(s) and s[self.i] == "!" and s[self.i + 1:self.i + 2] not in ("=", "~"):
            self.i += 1
            if self._at_end_after_ops() and not self.seen:
                raise FilterError(_E["NO_FILTER"], len(s), errno.EINVAL)
            return ("not", self._unary())
        if self.i < len(s) and s[self.i] == "(":
            self.i += 1
            inner = self._or()
            self._ws()
            if self.i < len(s) and s[self.i] == ")":
                self.i += 1
            return self._after(inner)
        pred = self._pred()
        self.seen = True
        return self._after(pred)

    def _after(self, node: Any) -> Any:
        """What may follow a predicate or group: blanks, ')' (left to the caller), &&, ||, end."""
        self._ws()
        s, k = self.s, self.i
        if k >= len(s) or s[k] == ")" or s.startswith("&&", k) or s.startswith("||", k):
            return node
        raise FilterError(_E["TOO_MANY_PREDS"], k, errno.EPERM)

    def _fail(self, name: str, at: int) -> FilterError:
        return FilterError(_E[name], self.start + 1 + at, errno.EINVAL)

    def _pred(self) -> _Pred:
        """parse_pred() at self.i; positions are reported from start + 1."""
        s = self.s
        self.start = p0 = self.i
        i = 0
        n = len(s) - p0

        def ch(k: int) -> str:
            return s[p0 + k] if k < n else ""
        while _isspace(ch(i)):
            i += 1
        j = i
        while ch(j) and (_isalnum(ch(j)) or ch(j) == "_"):
            j += 1
        if j == i:
            raise FilterError(0, 0, errno.EPERM)            # "Error: (0)"
        field = find_field(self.fmt, s[p0 + i:p0 + j])
        if field is None:
            raise self._fail("FIELD_NOT_FOUND", j)
        i = j
        function = False
        if s.startswith(".ustring", p0 + i):
            i += len(".ustring")
        if s.startswith(".function", p0 + i):
            i += len(".function")
            function = True
        if ch(i) == ".":
            raise self._fail("INVALID_OP", i)
        while _isspace(ch(i)):
            i += 1
        op = next((o for o in OPS if s.startswith(o, p0 + i)), None)
        if op is None:
            raise self._fail("INVALID_OP", i)
        i += len(op)
        while _isspace(ch(i)):
            i += 1
        v = i
        neg = op == "!="
        if function:
            if field.size != 8:
                raise self._fail("ILLEGAL_FIELD_OP", v)
            if op not in ("==", "!="):
                raise self._fail("INVALID_OP", v)
            if ch(v).isdigit():
                e = v
                while ch(e) and _isalnum(ch(e)):
                    e += 1
                if e - v >= 24:
                    raise self._fail("OPERAND_TOO_LONG", e)
                addr = _kstrto(s[p0 + v:p0 + e], False)
                if addr is None:
                    raise self._fail("INVALID_VALUE", e)
                name = None
            else:
                e = v
                while ch(e) and not _isspace(ch(e)):
                    e += 1
                name, addr = s[p0 + v:p0 + e], None
            span = self.lookup(name if name is not None else hex(addr or 0))
            if span is None:
                raise self._fail("NO_FUNCTION", e)
            self.i = p0 + e
            return _Pred(field, op, span, "func", neg)
        if s.startswith("CPUS", p0 + v):
            if field.kind not in ("cpu", "other"):
                raise self._fail("ILLEGAL_FIELD_OP", v)
            if op not in ("==", "!=", "&"):
                raise self._fail("ILLEGAL_FIELD_OP", v)
            if ch(v + 4) != "{":
                raise self._fail("MISSING_BRACE_OPEN", v + 5)
            close = s.find("}", p0 + v + 5)
            if close < 0:
                raise self._fail("MISSING_BRACE_CLOSE", n)
            body = s[p0 + v + 5:close]
            cpus = _cpulist(body, self.nr_cpus) if body else None
            if cpus is None:
                raise self._fail("INVALID_CPULIST", close - p0)
            self.i = close + 1
            if len(cpus) == 1 and field.kind in ("cpu", "other"):
                return _Pred(field, "==" if op == "&" else op, next(iter(cpus)), "num", op == "!=")
            return _Pred(field, op, frozenset(cpus), "cpus", False)
        if ch(v) in ("'", '"'):
            if op not in ("==", "!=", "~"):
                raise self._fail("ILLEGAL_FIELD_OP", v)
            if not field.is_string:
                raise self._fail("EXPECT_DIGIT", v)
            close = s.find(ch(v), p0 + v + 1)
            if close < 0:
                raise self._fail("MISSING_QUOTE", n)
            text = s[p0 + v + 1:close]
            if len(text) >= MAX_FILTER_STR_VAL:
                raise self._fail("OPERAND_TOO_LONG", close - p0)
            self.i = close + 1
            if op == "~":
                kind, pat, inv = _regex_kind(text)
                return _Pred(field, op, pat, "glob:" + kind, inv)
            return _Pred(field, op, text, "str", neg)
        if ch(v).isdigit() or ch(v) == "-":
            if field.is_string:
                raise self._fail("EXPECT_STRING", v)
            if op == "~":
                raise self._fail("ILLEGAL_FIELD_OP", v)
            e = v + (1 if ch(v) == "-" else 0)
            while ch(e) and _isalnum(ch(e)):
                e += 1
            if e - v >= 24:
                raise self._fail("OPERAND_TOO_LONG", e)
            value = _kstrto(s[p0 + v:p0 + e], field.signed)
            if value is None:
                raise self._fail("ILLEGAL_INTVAL", v)
            self.i = p0 + e
            return _Pred(field, op, value, "num", neg)
        raise self._fail("INVALID_VALUE", v)


def parse_filter(text: str, fmt: EventFormat, nr_cpus: int,
                 lookup: Callable[[str], tuple[int, int] | None] = lambda name: None) -> Any:
    """The filter tree of ``text`` (trailing blanks already removed), or FilterError."""
    if _calc_stack(text) == 0:
        raise FilterError(0, 0, errno.EINVAL)
    return _Parser(text, fmt, nr_cpus, lookup).parse()


# ---- matching -----------------------------------------------------------------------------

def _unsigned(raw: bytes) -> int:
    return int.from_bytes(raw, "little")


def _string_of(f: _Field, rec: bytes, comm: str, read_str: Callable[[int], bytes]) -> tuple[bytes, int]:
    """(the bytes compared, len) as test_pred_visited_fn() sees the string."""
    if f.kind == "comm":
        raw = comm.encode()[:16].ljust(16, b"\0")
        return raw, 16
    if f.kind == "static_string":
        return rec[f.offset:f.offset + f.size], f.size
    if f.kind in ("dyn_string", "rdyn_string"):
        loc = _unsigned(rec[f.offset:f.offset + 4])
        base = (f.offset + 4) if f.kind == "rdyn_string" else 0
        at, length = base + (loc & 0xFFFF), loc >> 16
        return rec[at:at + length], length
    data = read_str(_unsigned(rec[f.offset:f.offset + 8]))[:1023]
    return data + b"\0", len(data) + 1


def _cstr(b: bytes) -> bytes:
    return b.split(b"\0", 1)[0]


def _glob(pat: bytes, s: bytes) -> bool:
    """glob_match() of lib/glob.c: ? * [..] (leading ! negates) and \\ escapes."""
    rx = ""
    k = 0
    while k < len(pat):
        c = chr(pat[k])
        if c == "?":
            rx += "[^\\x00]"
        elif c == "*":
            rx += ".*"
        elif c == "\\" and k + 1 < len(pat):
            k += 1
            rx += re.escape(chr(pat[k]))
        elif c == "[":
            close = pat.find(b"]", k + 2 if pat[k + 1:k + 2] in (b"]", b"!") and k + 2 < len(pat) else k + 1)
            if close < 0:
                rx += re.escape(c)
            else:
                body = pat[k + 1:close].decode("latin-1")
                negate = body.startswith("!")
                body = body[1:] if negate else body
                rx += "[" + ("^" if negate else "") + body.replace("\\", "\\\\").replace("^", "\\^") + "]"
                k = close
        else:
            rx += re.escape(c)
        k += 1
    return re.fullmatch(rx, s.decode("latin-1"), re.S) is not None


def _strncmp_eq(a: bytes, b: bytes, n: int) -> bool:
    """strncmp(a, b, n) == 0, both read as NUL-terminated."""
    for k in range(n):
        ca = a[k] if k < len(a) else 0
        cb = b[k] if k < len(b) else 0
        if ca != cb:
            return False
        if ca == 0:
            return True
    return True


def _match_str(p: _Pred, s: bytes, length: int) -> bool:
    pat = p.value.encode() if isinstance(p.value, str) else bytes(p.value)
    kind = p.mode.split(":", 1)[1] if p.mode.startswith("glob:") else "full"
    if kind == "full":
        return _strncmp_eq(s, pat, length or max(len(s), len(pat)) + 1)
    if kind == "front":
        return not (length and length < len(pat)) and _strncmp_eq(s, pat, len(pat))
    if kind == "middle":
        return pat in (s[:length] if length else _cstr(s))
    if kind == "end":
        last = length - 1
        return last >= len(pat) and s[last - len(pat):last] == pat
    return _glob(pat, _cstr(s))


def _pred_true(p: _Pred, rec: bytes, cpu: int, comm: str, read_str: Callable[[int], bytes]) -> bool:
    f = p.field
    if p.mode in ("str",) or p.mode.startswith("glob:"):
        s, length = _string_of(f, rec, comm, read_str)
        return _match_str(p, s, length) != p.neg
    if f.kind == "stacktrace":
        return False
    if p.mode == "cpus":
        cpus: frozenset[int] = p.value
        if f.kind == "cpu":
            return (cpu in cpus) if p.op == "&" else (p.op == "!=")
        value = _unsigned(rec[f.offset:f.offset + f.size]) if f.size in (1, 2, 4, 8) else None
        if value is None or value >= 1 << 16:
            return False
        return (value in cpus) if p.op == "&" else (p.op == "!=")
    if f.kind == "cpu":
        val = (int(p.value) + (1 << 31)) % (1 << 32) - (1 << 31)
        if p.op == "&":
            return False
        return _compare(p.op, cpu, val)          # FILTER_PRED_FN_CPU: no NOT flag
    if f.size not in (1, 2, 4, 8):
        return False
    raw = _unsigned(rec[f.offset:f.offset + f.size])
    if p.mode == "func":
        start, end = p.value
        return bool(start <= raw < end) != p.neg
    bits = 8 * f.size
    mask = (1 << bits) - 1
    val = int(p.value) & mask
    if p.op in ("==", "!="):
        return (raw == val) != p.neg
    if p.op == "&":
        return raw & val != 0
    if f.signed:
        raw = raw - (1 << bits) if raw >> (bits - 1) else raw
        val = val - (1 << bits) if val >> (bits - 1) else val
    return _compare(p.op, raw, val)


def _compare(op: str, a: int, b: int) -> bool:
    table = {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}
    return table[op]


@dataclass
class EventFilter:
    """An event's filter: the text as written and, when it parsed, its tree."""

    text: str
    tree: Any = None
    error: FilterError | None = None

    def match(self, rec: bytes, cpu: int, comm: str,
              read_str: Callable[[int], bytes] = lambda a: b"") -> bool:
        """filter_match_preds(): keep the record?"""
        def walk(node: Any) -> bool:
            if isinstance(node, _Pred):
                return _pred_true(node, rec, cpu, comm, read_str)
            if node[0] == "not":
                return not walk(node[1])
            if node[0] == "and":
                return walk(node[1]) and walk(node[2])
            return walk(node[1]) or walk(node[2])
        return True if self.tree is None else walk(self.tree)

    def show(self) -> str:
        """print_event_filter(): the text, or the text with its parse error."""
        if self.error is None:
            return self.text + "\n"
        if not self.error.code:
            return f"{self.text}\nError: (0)\n\n"
        col = min(self.error.pos, len(self.text))
        return f"{self.text}\n{' ' * col}^\nparse_error: {FILTER_ERRORS[self.error.code]}\n\n"
