"""The ``print fmt:`` line of a format file, evaluated for a record: what the
kernel's generated ``trace_raw_output_<event>()`` prints (TP_printk) and what
tools/lib/traceevent event-parse.c reproduces from the text (process_arg(),
eval_num_arg(), print_str_arg(), pretty_print()).

A print fmt is a C string literal (adjacent literals concatenate) and the
arguments of a ``printf``::

    "comm=%s pid=%d prio=%d target_cpu=%03d", REC->comm, REC->pid, REC->prio, REC->target_cpu

The arguments are C expressions over ``REC->field`` (and ``REC->field[i]``):
integer literals, casts, unary and binary operators with C precedence, ``?:``,
and the kernel's helpers ``__print_flags()``, ``__print_symbolic()`` (and their
``_u64`` forms), ``__get_str()``, ``__get_dynamic_array()``,
``__get_dynamic_array_len()``, ``__print_hex()``, ``__print_hex_str()`` and
``__print_array()``. Conversions follow vsnprintf(): ``%d %i %u %x %X %o %c %s
%%`` with flags, width, precision and the ``hh h l ll L z`` lengths (an
unsigned conversion without ``l`` prints the low 32 bits), and ``%p`` with the
``S s B F f`` symbol forms and plain ``%p``/``%px`` as hexadecimal.

:func:`compile_print_fmt` parses once (raising :class:`PrintFmtError` with the
offset of what it cannot read); the result formats a record's field values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import TraceFormatError

__all__ = ["PrintFmt", "PrintFmtError", "compile_print_fmt", "printf"]

Value = int | str | bytes | tuple[int, ...] | None
Symbolizer = Callable[[int, bool], str]        # (address, with offset) -> %pS / %ps text


class PrintFmtError(TraceFormatError):
    """A print fmt this evaluator cannot read; names the offset in the text."""


# ---- tokens ------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<num>0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*)
  | (?P<arrow>->)
  | (?P<name>[A-Za-z_]\w*)
  | (?P<op><<|>>|<=|>=|==|!=|&&|\|\||[-+*/%<>&|^!~?:(),{}\[\].])
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r", "0": "\0", "a": "\a"}


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    at: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise PrintFmtError(f"cannot read print fmt at {text[pos:pos + 20]!r}", pos)
        kind = m.lastgroup or ""
        if kind != "space":
            out.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return out


# ---- expressions ---------------------------------------------------------------------

Node = tuple[Any, ...]
_BINARY = [("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="),
           ("<<", ">>"), ("+", "-"), ("*", "/", "%")]
_TYPE_WORDS = {"unsigned", "signed", "int", "long", "short", "char", "void", "const", "u8", "u16",
               "u32", "u64", "s8", "s16", "s32", "s64", "bool", "size_t", "pid_t", "__u8", "__u16",
               "__u32", "__u64", "__s8", "__s16", "__s32", "__s64", "unsigned long", "gfp_t",
               "uintptr_t", "struct", "u_int", "umode_t", "loff_t", "ssize_t", "dev_t"}


class _Parser:
    def __init__(self, toks: list[_Tok], text: str) -> None:
        self.toks, self.text, self.i = toks, text, 0

    def peek(self, k: int = 0) -> _Tok | None:
        return self.toks[self.i + k] if self.i + k < len(self.toks) else None

    def take(self, want: str | None = None) -> _Tok:
        tok = self.peek()
        if tok is None or (want is not None and tok.text != want):
            at = tok.at if tok is not None else len(self.text)
            raise PrintFmtError(f"expected {want or 'more'} in print fmt", at)
        self.i += 1
        return tok

    def expr(self) -> Node:
        cond = self.binary(0)
        tok = self.peek()
        if tok is not None and tok.text == "?":
            self.take("?")
            yes = self.expr()
            self.take(":")
            return ("?", cond, yes, self.expr())
        return cond

    def binary(self, level: int) -> Node:
        if level == len(_BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.text in _BINARY[level]:
            self.take()
            left = ("bin", tok.text, left, self.binary(level + 1))
        return left

    def _is_cast(self) -> bool:
        """At a "(": does a type name and ")" follow (``(unsigned long)``, ``(void *)``,
        ``(struct foo *)``, ``(pid_t)``)?"""
        k, words, struct = 1, 0, False
        while (tok := self.peek(k)) is not None and (tok.kind == "name" or tok.text == "*"):
            if tok.kind == "name":
                if tok.text == "REC":
                    return False
                if not (struct or tok.text in _TYPE_WORDS or tok.text.endswith("_t")):
                    return False
                struct = tok.text in ("struct", "union", "enum")
            words += 1
            k += 1
        nxt = self.peek(k)
        return words > 0 and nxt is not None and nxt.text == ")"

    def unary(self) -> Node:
        tok = self.take()
        if tok.text == "(" and self._cast_here():
            words = []
            while (t := self.take()).text != ")":
                words.append(t.text)
            return ("cast", " ".join(words), self.unary())
        if tok.text == "(":
            inner = self.expr()
            self.take(")")
            return self.postfix(inner)
        if tok.kind == "op" and tok.text in ("-", "!", "~", "+"):
            return ("un", tok.text, self.unary())
        if tok.kind == "op" and tok.text in ("&", "*"):     # &REC->x, *ptr: no memory to read
            return ("un", tok.text, self.unary())
        if tok.kind == "num":
            return ("num", int(tok.text.rstrip("uUlL"), 0))
        if tok.kind == "char":
            return ("num", ord(_unescape(tok.text[1:-1])[0]))
        if tok.kind == "str":
            text = _unescape(tok.text[1:-1])
            while (nxt := self.peek()) is not None and nxt.kind == "str":
                text += _unescape(self.take().text[1:-1])
            return ("str", text)
        if tok.kind == "name" and tok.text == "REC":
            self.take("->")
            return self.postfix(("field", self.take().text))
        if tok.kind == "name" and (after := self.peek()) is not None and after.text == "(":
            return self.call(tok)
        if tok.kind == "name":
            return ("const", tok.text, tok.at)
        raise PrintFmtError(f"unexpected {tok.text!r} in print fmt", tok.at)

    def _cast_here(self) -> bool:
        self.i -= 1
        try:
            return self._is_cast()
        finally:
            self.i += 1

    def postfix(self, node: Node) -> Node:
        while (tok := self.peek()) is not None and tok.text in ("[", "->", "."):
            self.take()
            if tok.text == "[":
                node = ("index", node, self.expr())
                self.take("]")
            else:
                node = ("member", node, self.take().text)
        return node

    def call(self, name: _Tok) -> Node:
        self.take("(")
        args: list[Node] = []
        while (tok := self.peek()) is not None and tok.text != ")":
            if tok.text == "{":                      # { value, "name" } pairs of the helpers
                self.take("{")
                value = self.expr()
                self.take(",")
                label = self.expr()
                self.take("}")
                args.append(("pair", value, label))
            else:
                args.append(self.expr())
            if (t := self.peek()) is not None and t.text == ",":
                self.take(",")
        self.take(")")
        return ("call", name.text, tuple(args), name.at)


# ---- evaluation ----------------------------------------------------------------------

_CAST_BITS = {"char": 8, "unsigned char": 8, "u8": 8, "__u8": 8, "s8": 8, "__s8": 8, "bool": 8,
              "short": 16, "unsigned short": 16, "u16": 16, "__u16": 16, "s16": 16, "__s16": 16,
              "int": 32, "unsigned int": 32, "unsigned": 32, "u32": 32, "__u32": 32, "s32": 32,
              "__s32": 32, "signed int": 32}


def _cast(kind: str, value: Value) -> Value:
    if not isinstance(value, int):
        return value
    kind = kind.replace("const ", "").strip()
    if kind.endswith("*"):
        return value & (1 << 64) - 1
    bits = _CAST_BITS.get(kind, 64)
    value &= (1 << bits) - 1
    signed = not (kind.startswith("unsigned") or kind.startswith("u") or kind.startswith("__u")
                  or kind in ("bool", "size_t", "uintptr_t"))
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _binop(op: str, a: Value, b: Value) -> Value:
    if not isinstance(a, int) or not isinstance(b, int):
        if op in ("==", "!="):
            return int((a == b) == (op == "=="))
        raise ValueError(f"{op} on non-integers")
    if op == "/":
        return _c_div(a, b) if b else 0
    if op == "%":
        return a - b * _c_div(a, b) if b else 0
    ops: dict[str, Callable[[int, int], int]] = {
        "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
        "<<": lambda x, y: (x << y) & ((1 << 64) - 1), ">>": lambda x, y: x >> y,
        "&": lambda x, y: x & y, "|": lambda x, y: x | y, "^": lambda x, y: x ^ y,
        "<": lambda x, y: int(x < y), ">": lambda x, y: int(x > y), "<=": lambda x, y: int(x <= y),
        ">=": lambda x, y: int(x >= y), "==": lambda x, y: int(x == y), "!=": lambda x, y: int(x != y),
        "&&": lambda x, y: int(bool(x) and bool(y)), "||": lambda x, y: int(bool(x) or bool(y)),
    }
    return ops[op](a, b)


def _as_int(value: Value) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, str, tuple)):
        return len(value)
    return 0


class _Eval:
    def __init__(self, rec: Mapping[str, Value]) -> None:
        self.rec = rec

    def __call__(self, node: Node) -> Value:
        kind = node[0]
        if kind == "num":
            return int(node[1])
        if kind == "str":
            return str(node[1])
        if kind == "field":
            return self.rec.get(node[1])
        if kind == "const":
            return 0                               # an enum name the text cannot resolve
        if kind == "cast":
            return _cast(node[1], self(node[2]))
        if kind == "un":
            v = self(node[2])
            if node[1] == "!":
                return int(not v)
            if node[1] in ("&", "*", "+"):
                return v
            iv = _as_int(v)
            return -iv if node[1] == "-" else ~iv
        if kind == "bin":
            op = node[1]
            if op in ("&&", "||"):                 # short-circuit, as C
                left = bool(self(node[2]))
                if (op == "&&" and not left) or (op == "||" and left):
                    return int(left)
                return int(bool(self(node[3])))
            return _binop(op, self(node[2]), self(node[3]))
        if kind == "?":
            return self(node[2]) if self(node[1]) else self(node[3])
        if kind == "index":
            base, idx = self(node[1]), _as_int(self(node[2]))
            if isinstance(base, (tuple, bytes)) and 0 <= idx < len(base):
                return base[idx]
            return 0
        if kind == "member":
            return self(node[1])
        if kind == "call":
            return self.call(node[1], node[2])
        if kind == "pair":
            return self(node[1])
        raise ValueError(f"unknown node {kind}")

    def _field_arg(self, node: Node) -> Value:
        """The helpers name their field bare: ``__get_str(filename)``."""
        return self.rec.get(node[1]) if node[0] == "const" else self(node)

    def call(self, name: str, args: tuple[Node, ...]) -> Value:
        if name in ("__get_str", "__get_dynamic_array", "__get_rel_str", "__get_rel_dynamic_array",
                    "__get_bitmask", "__get_cpumask"):
            return self._field_arg(args[0])
        if name in ("__get_dynamic_array_len", "__get_rel_dynamic_array_len"):
            return _as_int(self._field_arg(args[0]))
        if name in ("__print_flags", "__print_flags_u64"):
            value, delim = _as_int(self(args[0])), str(self(args[1]))
            return _print_flags(value, delim, [(_as_int(self(p[1])), str(self(p[2]))) for p in args[2:]])
        if name in ("__print_symbolic", "__print_symbolic_u64"):
            value = _as_int(self(args[0]))
            for p in args[1:]:
                if _as_int(self(p[1])) == value:
                    return str(self(p[2]))
            return f"0x{value & ((1 << 64) - 1):x}"
        if name in ("__print_hex", "__print_hex_str"):
            data, length = self(args[0]), _as_int(self(args[1]))
            raw = bytes(data[:length]) if isinstance(data, (bytes, tuple)) else b""
            sep = "" if name == "__print_hex_str" else " "        # %*phN / %*ph
            return sep.join(f"{b:02x}" for b in raw)
        if name == "__print_array":
            data, count, size = self(args[0]), _as_int(self(args[1])), _as_int(self(args[2]))
            items = list(data)[:count] if isinstance(data, (tuple, bytes)) else []
            return "{" + ",".join(f"0x{int(v) & ((1 << 8 * size) - 1):x}" for v in items) + "}"
        if name == "sizeof":
            return 8
        raise ValueError(f"unknown helper {name}()")


def _print_flags(value: int, delim: str, names: Sequence[tuple[int, str]]) -> str:
    """trace_print_flags_seq(): the names of the set flags, then what is left in hex."""
    out: list[str] = []
    for mask, name in names:
        if mask and value & mask == mask:
            out.append(name)
            value &= ~mask
        if not value:
            break
    if value:
        out.append(f"0x{value:x}")
    return delim.join(out)


# ---- printf --------------------------------------------------------------------------

_SPEC = re.compile(r"%(?P<flags>[-+ #0]*)(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d+))?"
                   r"(?P<len>hh|h|ll|l|L|z|j|t)?(?P<conv>[diouxXcsp%])(?P<ext>[SsBFfKxMmIiUVa]\w*)?")


def printf(fmt: str, args: Sequence[Value], sym: Symbolizer | None = None) -> str:
    """vsnprintf() for the conversions the kernel's events use."""
    out: list[str] = []
    pos = 0
    it = iter(args)
    for m in _SPEC.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        conv = m.group("conv")
        if conv == "%":
            out.append("%")
            continue
        flags = m.group("flags") or ""
        width = m.group("width")
        if width == "*":
            width = str(_as_int(next(it, 0)))
        prec = m.group("prec")
        if prec == "*":
            prec = str(_as_int(next(it, 0)))
        value = next(it, None)
        ext = m.group("ext") or ""
        if conv == "p" and ext[:1] in ("S", "s", "B", "F", "f"):
            pos -= len(ext) - 1                    # only the first letter belongs to %p
            addr = _as_int(value) & ((1 << 64) - 1)
            text = sym(addr, ext[0] in ("S", "B", "F")) if sym else f"0x{addr:x}"
            out.append(_pad(text, flags, width))
            continue
        if conv == "p" and ext:
            pos -= len(ext) - 1                    # %px, %pK ...: printed as the address
        out.append(_convert(conv, flags, width, prec, m.group("len") or "", value))
    out.append(fmt[pos:])
    return "".join(out)


def _pad(text: str, flags: str, width: str | None) -> str:
    if width is None:
        return text
    return text.ljust(int(width)) if "-" in flags else text.rjust(int(width))


def _convert(conv: str, flags: str, width: str | None, prec: str | None, length: str,
             value: Value) -> str:
    if conv == "s":
        if isinstance(value, bytes):
            value = value.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
        text = "(null)" if value is None else str(value)
        if prec is not None:
            text = text[:int(prec)]
        return _pad(text, flags, width)
    iv = _as_int(value)
    if conv == "c":
        return _pad(chr(iv & 0xFF), flags, width)
    bits = {"hh": 8, "h": 16, "l": 64, "ll": 64, "L": 64, "z": 64, "j": 64, "t": 64}.get(length, 32)
    if conv == "p":
        bits = 64
    iv &= (1 << bits) - 1
    if conv in "di" and iv >> (bits - 1):
        iv -= 1 << bits
    if conv == "p":
        return _pad(f"{iv:016x}" if not width else f"{iv:x}", flags, width)
    return _integer(conv, flags, width, None if prec is None else int(prec), iv)


def _integer(conv: str, flags: str, width: str | None, prec: int | None, value: int) -> str:
    """vsnprintf()'s number(): sign, ``#`` prefix, precision, then width (zeros or spaces)."""
    mag = abs(value)
    digits = {"x": f"{mag:x}", "X": f"{mag:X}", "o": f"{mag:o}"}.get(conv, str(mag))
    if prec is not None:
        digits = "" if prec == 0 and mag == 0 else digits.zfill(prec)
    sign = ""
    if conv in "di":
        sign = "-" if value < 0 else "+" if "+" in flags else " " if " " in flags else ""
    elif "#" in flags and conv in "xX" and mag:
        sign = "0" + conv
    elif "#" in flags and conv == "o" and not digits.startswith("0"):
        digits = "0" + digits
    w = int(width) if width else 0
    if "-" in flags:
        return (sign + digits).ljust(w)
    if "0" in flags and prec is None:
        return sign + digits.zfill(w - len(sign))
    return (sign + digits).rjust(w)


# ---- the compiled form ----------------------------------------------------------------

@dataclass(frozen=True)
class PrintFmt:
    """A parsed print fmt: the format string and its argument expressions."""

    fmt: str
    args: tuple[Node, ...]

    def fields(self) -> set[str]:
        """The REC-> fields the arguments read."""
        found: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, tuple):
                if node and node[0] == "field":
                    found.add(node[1])
                for child in node[1:]:
                    walk(child)
        for a in self.args:
            walk(a)
        return found

    def format(self, rec: Mapping[str, Value], sym: Symbolizer | None = None) -> str:
        """The text for one record (field name -> value)."""
        ev = _Eval(rec)
        return printf(self.fmt, [ev(a) for a in self.args], sym)


def compile_print_fmt(text: str) -> PrintFmt:
    """Parse a format file's ``print fmt:`` text (without the ``print fmt:`` prefix)."""
    toks = _tokens(text)
    if not toks or toks[0].kind != "str":
        raise PrintFmtError("a print fmt starts with a string literal", toks[0].at if toks else 0)
    p = _Parser(toks, text)
    fmt = ""
    while (tok := p.peek()) is not None and tok.kind == "str":
        fmt += _unescape(p.take().text[1:-1])
    args: list[Node] = []
    while p.peek() is not None:
        p.take(",")
        args.append(p.expr())
    return PrintFmt(fmt, tuple(args))
