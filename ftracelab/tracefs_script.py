"""A tiny shell for tracefs recipes as written in Documentation/trace/ftrace.rst
(``cd /sys/kernel/tracing; echo vfs_read > set_ftrace_filter; cat trace``).

:func:`run_tracefs_script` runs such a script against a :class:`~ftracelab.tracefs.TraceFS`
and returns what a terminal would have shown; ``%load_ext ftracelab.tracefs_script``
adds the ``%%tracefs [LAB]`` cell magic that does the same in a notebook.

What it understands, with bash's rules:

* commands separated by newlines or ``;``; blank lines; ``#`` comments (a ``#``
  that starts a word, outside quotes); backslash line continuation;
* quoting with ``'...'``, ``"..."`` and ``\\``, POSIX style; quoted text is
  never an operator, so ``echo '>' > trace_marker`` writes ``>``;
* redirections ``> FILE``, ``>> FILE`` (also glued: ``>FILE``, ``1>FILE``);
  ``>`` opens with O_TRUNC, which is what clears set_ftrace_filter or trace
  even when nothing is written (``echo -n > trace``);
* pathname expansion of unquoted ``*``, ``?``, ``[...]`` against the tracefs
  tree: ``echo sched* > set_ftrace_filter`` becomes ``echo sched_switch ...``
  if such files exist in the current directory -- the trap ftrace.rst warns
  about -- and stays literal otherwise;
* the commands ``echo [-neE]``, ``cat``, ``cd``, ``ls``, ``pwd``, ``:`` and
  ``true``. Paths may be relative, use ``..``, or be absolute under
  ``/sys/kernel/tracing`` or ``/sys/kernel/debug/tracing``.

Errors are printed the way bash and coreutils print them (``bash: echo: write
error: Invalid argument``) and the script goes on with the next command, as a
script without ``set -e`` does; a syntax error ends it, as in bash. Anything
else -- pipes, ``&``, ``$`` expansions, variable assignments, other commands --
is reported as unsupported rather than half-emulated.

Reading a file is the kernel's read: ``cat trace_pipe`` consumes what it shows.
A binary file (``per_cpu/cpu0/trace_pipe_raw``) is read -- and so consumed --
but not printed; the shell says how many bytes it got.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .tracefs import TraceFS, Writer

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .lab import Lab

__all__ = ["TracefsShell", "load_ipython_extension", "run_tracefs_script", "tracefs"]

TRACEFS_ROOT = "/sys/kernel/tracing"
_ROOTS = (("sys", "kernel", "tracing"), ("sys", "kernel", "debug", "tracing"))
_OUTSIDE = f"outside the emulated tracefs ({TRACEFS_ROOT})"
_COMMANDS = "echo, cat, cd, ls, pwd, :, true"

Output = Callable[[str], None]


# ---- parsing ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Word:
    text: str
    quoted: tuple[bool, ...]        # per character: came from quotes or a backslash escape

    def has_glob(self) -> bool:
        return any(c in "*?[" and not q for c, q in zip(self.text, self.quoted, strict=True))

    def glob_pattern(self) -> str:
        """fnmatch pattern in which quoted magic characters match only themselves."""
        return "".join(f"[{c}]" if q and c in "*?[" else c
                       for c, q in zip(self.text, self.quoted, strict=True))


@dataclass
class _Command:
    words: list[_Word] = field(default_factory=list)
    redirects: list[tuple[str, _Word]] = field(default_factory=list)    # (">" or ">>", target)
    unsupported: str | None = None                                      # the first thing we can't do

    def empty(self) -> bool:
        return not self.words and not self.redirects and self.unsupported is None


@dataclass(frozen=True)
class _SyntaxError:
    message: str


_EXPANSION = re.compile(r"\$(\{[^}]*\}?|\(\(?|[A-Za-z_][A-Za-z0-9_]*|[0-9$?#@*!-])")
_OPERATOR_CHARS = "|&<()"


class _Parser:
    """Splits a script into simple commands, with bash's quoting and word rules."""

    def __init__(self, script: str) -> None:
        self.s = script.replace("\r\n", "\n")
        self.i = 0
        self.cmd = _Command()
        self.chars: list[str] | None = None     # the word being built; None between words
        self.quoted: list[bool] = []
        self.redirect: str | None = None        # operator waiting for its target word

    def _add(self, text: str, quoted: bool) -> None:
        if self.chars is None:
            self.chars, self.quoted = [], []
        self.chars.extend(text)
        self.quoted.extend([quoted] * len(text))

    def _end_word(self) -> None:
        if self.chars is None:
            return
        word = _Word("".join(self.chars), tuple(self.quoted))
        self.chars = None
        if self.redirect is not None:
            self.cmd.redirects.append((self.redirect, word))
            self.redirect = None
        else:
            self.cmd.words.append(word)

    def _unsupported(self, what: str) -> None:
        if self.cmd.unsupported is None:
            self.cmd.unsupported = what

    def _end_command(self, token: str) -> Iterator[_Command | _SyntaxError]:
        self._end_word()
        if self.redirect is not None:
            yield _SyntaxError(f"bash: syntax error near unexpected token `{token}'")
            return
        if not self.cmd.empty():
            yield self.cmd
        elif token == ";":
            yield _SyntaxError("bash: syntax error near unexpected token `;'")
            return
        self.cmd = _Command()

    def _dollar(self) -> bool:
        """At a ``$``: note an expansion as unsupported; False if the ``$`` is literal."""
        m = _EXPANSION.match(self.s, self.i)
        if m is None:
            return False
        self._unsupported(m.group(0))
        return True

    def commands(self) -> Iterator[_Command | _SyntaxError]:
        s, n = self.s, len(self.s)
        while self.i < n:
            c = s[self.i]
            if c == "\\":
                if s.startswith("\\\n", self.i):
                    self.i += 2                                  # line continuation
                    continue
                self._add(s[self.i + 1:self.i + 2] or "\\", True)
                self.i += 2
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    yield _SyntaxError("bash: unexpected EOF while looking for matching `''")
                    return
                self._add(s[self.i + 1:end], True)
                self.i = end + 1
            elif c == '"':
                if not self._double_quoted():
                    yield _SyntaxError("bash: unexpected EOF while looking for matching `\"'")
                    return
            elif c == "$" and self._dollar():
                self._add("$", False)
                self.i += 1
            elif c == "`":
                self._unsupported("`")
                self._add(c, False)
                self.i += 1
            elif c in " \t":
                self._end_word()
                self.i += 1
            elif c in "\n;":
                self.i += 1
                for item in self._end_command("newline" if c == "\n" else ";"):
                    yield item
                    if isinstance(item, _SyntaxError):
                        return
            elif c == "#" and self.chars is None:
                end = s.find("\n", self.i)
                self.i = n if end < 0 else end                   # the newline still ends the command
            elif c == ">":
                if self.redirect is not None:
                    yield _SyntaxError("bash: syntax error near unexpected token `>'")
                    return
                self._redirection()
            elif c in _OPERATOR_CHARS:
                self._end_word()
                j = self.i
                while j < n and s[j] in _OPERATOR_CHARS:
                    j += 1
                self._unsupported(s[self.i:j])
                self.i = j
            else:
                self._add(c, False)
                self.i += 1
        yield from self._end_command("newline")

    def _double_quoted(self) -> bool:
        """Consume ``"..."``; False if it never closes."""
        s, n = self.s, len(self.s)
        self._add("", True)                  # "" is an (empty) word
        self.i += 1
        while self.i < n:
            c = s[self.i]
            if c == '"':
                self.i += 1
                return True
            if c == "\\" and self.i + 1 < n and s[self.i + 1] in '$`"\\\n':
                if s[self.i + 1] != "\n":
                    self._add(s[self.i + 1], True)
                self.i += 2
                continue
            m = _EXPANSION.match(s, self.i) if c == "$" else None
            if m is not None or c == "`":
                self._unsupported(m.group(0) if m is not None else c)
            self._add(c, True)
            self.i += 1
        return False

    def _redirection(self) -> None:
        s = self.s
        # "1>file" and "2>file": a word of unquoted digits glued to ">" is a file descriptor
        if self.chars and all(ch.isdigit() for ch in self.chars) and not any(self.quoted):
            fd = "".join(self.chars)
            self.chars = None
            if fd != "1":
                self._unsupported(f"{fd}>")
        else:
            self._end_word()
        self.i += 1
        op = ">"
        if s.startswith(">", self.i):
            op = ">>"
            self.i += 1
        elif s.startswith("|", self.i):      # >| (noclobber override) is >
            self.i += 1
        if s.startswith("&", self.i):
            self._unsupported(op + "&")
            self.i += 1
        self.redirect = op


# ---- the shell ----------------------------------------------------------------------------------
def _strerror(e: OSError) -> str:
    return e.strerror or os.strerror(e.errno or errno.EIO)


def _echo_escapes(text: str) -> tuple[str, bool]:
    r"""``echo -e``: interpret \n, \t, \0nnn, \xHH ...; True if ``\c`` stopped the output."""
    simple = {"\\": "\\", "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f",
              "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
    out: list[str] = []
    pos = 0
    for m in re.finditer(r"\\(x[0-9A-Fa-f]{1,2}|0[0-7]{0,3}|.)", text, re.DOTALL):
        out.append(text[pos:m.start()])
        pos = m.end()
        code = m.group(1)
        if code == "c":
            return "".join(out), True
        if code[0] == "x" and len(code) > 1:
            out.append(chr(int(code[1:], 16)))
        elif code[0] == "0":
            out.append(chr(int(code[1:] or "0", 8)))
        else:
            out.append(simple.get(code, "\\" + code))
    out.append(text[pos:])
    return "".join(out), False


class TracefsShell:
    """A shell session on a tracefs: :meth:`run` keeps the current directory between scripts."""

    def __init__(self, fs: TraceFS, cwd: str = "") -> None:
        self.fs = fs
        rel = self.resolve(cwd, "")
        if rel is None:
            raise OSError(errno.ENOENT, _OUTSIDE, cwd)
        fs.listdir(rel)                      # ENOENT / ENOTDIR for a bad starting directory
        self.cwd = rel

    # ---- paths --------------------------------------------------------------------------------
    def resolve(self, path: str, cwd: str | None = None) -> str | None:
        """The tracefs-relative path of a shell path, or None if it is outside tracefs."""
        base = self.cwd if cwd is None else cwd
        parts = [] if path.startswith("/") else [*_ROOTS[0], *(p for p in base.split("/") if p)]
        for comp in path.split("/"):
            if comp in ("", "."):
                continue
            if comp == "..":
                if parts:
                    parts.pop()
            else:
                parts.append(comp)
        for root in _ROOTS:
            if tuple(parts[:len(root)]) == root:
                return "/".join(parts[len(root):])
        return None

    def pwd(self) -> str:
        return TRACEFS_ROOT + ("/" + self.cwd if self.cwd else "")

    def _expand(self, word: _Word) -> list[str]:
        """Pathname expansion; a pattern that matches nothing stays as written."""
        if not word.has_glob():
            return [word.text]
        pattern = word.glob_pattern()
        candidates = ["/"] if pattern.startswith("/") else [""]
        for comp in (p for p in pattern.split("/") if p):
            literal = not any(ch in "*?[" for ch in comp)   # quoted magic was made "[*]"
            nxt: list[str] = []
            for cand in candidates:
                if literal:
                    nxt.append(cand + comp if cand in ("", "/") else f"{cand}/{comp}")
                    continue
                rel = self.resolve(cand or ".")
                if rel is None or not self._is_dir(rel):
                    continue
                for entry in self.fs.listdir(rel):
                    if fnmatch.fnmatchcase(entry, comp) and not (entry.startswith(".")
                                                                 and not comp.startswith(".")):
                        nxt.append(cand + entry if cand in ("", "/") else f"{cand}/{entry}")
            candidates = nxt
        found = []
        for cand in candidates:
            rel = self.resolve(cand)
            if rel is not None and self.fs.exists(rel):
                found.append(cand)
        return sorted(found) if found else [word.text]

    def _is_dir(self, rel: str) -> bool:
        try:
            self.fs.listdir(rel)
        except OSError:
            return False
        return True

    def _open(self, rel: str) -> Writer:
        """open(path, O_WRONLY), see TraceFS.open_write()."""
        return self.fs.open_write(rel)

    # ---- running ------------------------------------------------------------------------------
    def run(self, script: str) -> str:
        """Run a script; return everything it printed (stdout and stderr, in order)."""
        printed: list[str] = []
        out = printed.append

        def err(line: str) -> None:
            printed.append(line + "\n")

        for item in _Parser(script).commands():
            if isinstance(item, _SyntaxError):
                err(item.message)
                break
            self._execute(item, out, err)
        return "".join(printed)

    def _execute(self, cmd: _Command, out: Output, err: Callable[[str], None]) -> None:
        if cmd.unsupported is not None:
            err(f"bash: {cmd.unsupported}: not supported by this shell (it runs {_COMMANDS}, "
                "with > and >>)")
            return
        argv = [text for w in cmd.words for text in self._expand(w)]
        first = cmd.words[0] if cmd.words else None
        if first is not None and re.match(r"[A-Za-z_][A-Za-z0-9_]*=", first.text) \
                and not any(first.quoted[:first.text.index("=") + 1]):
            err(f"bash: {first.text}: variable assignments are not supported by this shell")
            return

        # bash opens every redirection, left to right, before running the command
        targets: list[tuple[str, str, Writer]] = []
        for op, word in cmd.redirects:
            names = self._expand(word)
            if len(names) != 1:
                err(f"bash: {word.text}: ambiguous redirect")
                return
            rel = self.resolve(names[0])
            if rel is None:
                err(f"bash: {names[0]}: {_OUTSIDE}")
                return
            try:
                targets.append((op, names[0], self._open(rel)))
            except OSError as e:
                err(f"bash: {names[0]}: {_strerror(e)}")
                return
        for op, _, writer in targets[:-1]:
            self._truncate(op, writer)          # opened and closed again without a write

        name = argv[0] if argv else ""
        collected: list[str] = []
        stdout = collected.append if targets else out
        if argv:
            self._command(argv, stdout, err)
        if not targets:
            return
        op, _, writer = targets[-1]
        data = "".join(collected)
        if not data:
            self._truncate(op, writer)
            return
        try:
            writer(data, op == ">>")
        except OSError as e:
            prefix = "" if name in ("cat", "ls") else "bash: "
            err(f"{prefix}{name}: write error: {_strerror(e)}")

    @staticmethod
    def _truncate(op: str, writer: Writer) -> None:
        """open(O_TRUNC) and close with no write(): for set_ftrace_filter, set_ftrace_pid
        and trace the truncation itself empties them. Writers model it as a write of ""
        with append=False; the others reject "" as input they would never see, so
        their errors are dropped, as no write() happened."""
        if op == ">":
            with contextlib.suppress(OSError):
                writer("", False)

    def _command(self, argv: list[str], out: Output, err: Callable[[str], None]) -> None:
        name, args = argv[0], argv[1:]
        if name in (":", "true"):
            return
        if name == "echo":
            self._echo(args, out)
        elif name == "cat":
            self._cat(args, out, err)
        elif name == "cd":
            self._cd(args, err)
        elif name == "ls":
            self._ls(args, out, err)
        elif name == "pwd":
            out(self.pwd() + "\n")
        else:
            err(f"bash: {name}: command not found")

    @staticmethod
    def _echo(args: list[str], out: Output) -> None:
        newline, escapes = True, False
        while args and re.fullmatch(r"-[neE]+", args[0]):
            for flag in args[0][1:]:
                if flag == "n":
                    newline = False
                else:
                    escapes = flag == "e"
            args = args[1:]
        text = " ".join(args)
        if escapes:
            text, stopped = _echo_escapes(text)
            newline = newline and not stopped
        out(text + ("\n" if newline else ""))

    def _cat(self, args: list[str], out: Output, err: Callable[[str], None]) -> None:
        for arg in args:
            if arg.startswith("-") and arg != "-":
                err(f"cat: {arg}: options are not supported by this shell")
                continue
            rel = self.resolve(arg)
            if rel is None:
                err(f"cat: {arg}: {_OUTSIDE}")
                continue
            try:
                content = self.fs.read(rel)
            except OSError as e:
                err(f"cat: {arg}: {_strerror(e)}")
                continue
            if isinstance(content, bytes):
                err(f"cat: {arg}: binary file ({len(content)} bytes); use lab.tracefs.read()")
            else:
                out(content)

    def _cd(self, args: list[str], err: Callable[[str], None]) -> None:
        if len(args) > 1:
            err("bash: cd: too many arguments")
            return
        target = args[0] if args else "/sys/kernel/tracing"   # no $HOME here: the tracefs root
        rel = self.resolve(target)
        if rel is None:
            err(f"bash: cd: {target}: {_OUTSIDE}")
            return
        try:
            self.fs.listdir(rel)
        except OSError as e:
            err(f"bash: cd: {target}: {_strerror(e)}")
            return
        self.cwd = rel

    def _ls(self, args: list[str], out: Output, err: Callable[[str], None]) -> None:
        opts = [a for a in args if a.startswith("-") and a not in ("-", "-1")]
        if opts:
            err(f"ls: {opts[0]}: options are not supported by this shell")
            return
        operands = [a for a in args if a != "-1"] or ["."]
        files: list[str] = []
        dirs: list[tuple[str, list[str]]] = []
        for arg in operands:
            rel = self.resolve(arg)
            if rel is None:
                err(f"ls: cannot access '{arg}': {_OUTSIDE}")
                continue
            try:
                dirs.append((arg, self.fs.listdir(rel)))
            except OSError as e:
                if e.errno == errno.ENOTDIR:
                    files.append(arg)
                else:
                    err(f"ls: cannot access '{arg}': {_strerror(e)}")
        blocks = ["".join(f"{f}\n" for f in sorted(files))] if files else []
        headers = len(operands) > 1
        for arg, entries in sorted(dirs):
            listing = "".join(f"{e}\n" for e in entries)
            blocks.append(f"{arg}:\n{listing}" if headers else listing)
        out("\n".join(blocks))


def run_tracefs_script(tracefs: TraceFS, script: str, cwd: str = "") -> str:
    """Run a shell recipe against ``tracefs`` starting in ``cwd`` (relative to the tracefs
    root, or absolute under /sys/kernel/tracing) and return what it printed::

        run_tracefs_script(lab.tracefs, '''
        cd /sys/kernel/tracing
        echo vfs_read > set_ftrace_filter
        echo vfs_write >> set_ftrace_filter
        cat set_ftrace_filter
        ''')
    """
    return TracefsShell(tracefs, cwd).run(script)


def tracefs(lab: Lab, script: str, cwd: str = "") -> None:
    """What ``%%tracefs`` does, as a function: run ``script`` on ``lab.tracefs`` and print
    the output."""
    print(run_tracefs_script(lab.tracefs, script, cwd), end="")


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext ftracelab.tracefs_script``: registers the ``%%tracefs [LAB]`` cell magic,
    which runs the cell on ``LAB.tracefs`` (default: the variable ``lab``)."""
    from IPython.core.error import UsageError

    def tracefs_magic(line: str, cell: str) -> None:
        name = line.strip() or "lab"
        if name not in ipython.user_ns:
            raise UsageError(f"%%tracefs: no variable {name!r}; create one with "
                             f"{name} = ftracelab.Lab() or name yours: %%tracefs MYLAB")
        obj = ipython.user_ns[name]
        fs = obj if isinstance(obj, TraceFS) else getattr(obj, "tracefs", None)
        if not isinstance(fs, TraceFS):
            raise UsageError(f"%%tracefs: {name!r} is a {type(obj).__name__}, not a Lab")
        print(run_tracefs_script(fs, cell), end="")

    # what InteractiveShell.register_magic_function() calls; its functools.wraps hides the types
    ipython.magics_manager.register_function(tracefs_magic, magic_kind="cell", magic_name="tracefs")
