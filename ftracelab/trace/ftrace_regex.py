"""Function-name patterns of set_ftrace_filter and friends (kernel/trace/trace.c:
filter_parse_regex(); kernel/trace/ftrace.c: ftrace_match(), match_records();
lib/glob.c: glob_match()).

``filter_parse_regex`` classifies a word the way the kernel does::

    "vfs_read"   MATCH_FULL         the whole name
    "vfs_*"      MATCH_FRONT_ONLY   a prefix
    "*_read"     MATCH_END_ONLY     a suffix
    "*sys_*"     MATCH_MIDDLE_ONLY  a substring
    "a*c?[x]"    MATCH_GLOB         a glob (*, ?, [...], \\ escapes)
    "42"         MATCH_INDEX        the 42nd line of available_filter_functions
    "!word"      any of the above, negated: remove the matches

Pure functions over strings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RegexType(enum.IntEnum):
    """``enum regex_type`` (kernel/trace/trace.h)."""

    MATCH_FULL = 0
    MATCH_FRONT_ONLY = 1
    MATCH_MIDDLE_ONLY = 2
    MATCH_END_ONLY = 3
    MATCH_GLOB = 4
    MATCH_INDEX = 5


@dataclass(frozen=True)
class FuncPattern:
    """One parsed word: what to search for, how, and whether it removes."""

    search: str
    type: RegexType
    negate: bool


def filter_parse_regex(word: str) -> FuncPattern:
    """Classify one word as filter_parse_regex() does (plus the MATCH_INDEX check)."""
    negate = word.startswith("!")
    buff = word[1:] if negate else word
    kind = RegexType.MATCH_FULL
    search = buff
    for i, ch in enumerate(buff):
        if ch == "*":
            if i == 0:
                search = buff[1:]
                kind = RegexType.MATCH_END_ONLY
            elif i == len(buff) - 1:
                kind = (RegexType.MATCH_MIDDLE_ONLY if kind == RegexType.MATCH_END_ONLY
                        else RegexType.MATCH_FRONT_ONLY)
                search = search[:-1]
                break
            else:
                kind, search = RegexType.MATCH_GLOB, buff
                break
        elif ch in "[?\\":
            kind, search = RegexType.MATCH_GLOB, buff
            break
    if kind == RegexType.MATCH_FULL and buff[:1].isdigit():
        kind = RegexType.MATCH_INDEX
    return FuncPattern(search, kind, negate)


def glob_match(pattern: str, text: str) -> bool:
    """lib/glob.c glob_match(): *, ?, [set], [!set], ranges and \\ escapes."""
    p = t = 0
    back_p = back_t = -1
    while True:
        if t < len(text) or p < len(pattern):
            if p < len(pattern):
                c = pattern[p]
                if c == "*":
                    back_p, back_t = p + 1, t
                    p += 1
                    continue
                if t < len(text):
                    ok, np = _match_one(pattern, p, text[t])
                    if ok:
                        p, t = np, t + 1
                        continue
            if back_p >= 0 and back_t < len(text):
                back_t += 1
                p, t = back_p, back_t
                continue
            return False
        return True


def _match_one(pattern: str, p: int, ch: str) -> tuple[bool, int]:
    """Match one character at pattern[p]; returns (matched, next pattern index)."""
    c = pattern[p]
    if c == "?":
        return True, p + 1
    if c == "[":
        i = p + 1
        inverted = i < len(pattern) and pattern[i] == "!"    # lib/glob.c: '!' only, not '^'
        if inverted:
            i += 1
        matched = False
        first = True
        while i < len(pattern) and (first or pattern[i] != "]"):
            first = False
            lo = pattern[i]
            hi = lo
            if i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
                hi = pattern[i + 2]
                i += 2
            if lo <= ch <= hi:
                matched = True
            i += 1
        if i >= len(pattern):          # no closing ']': a literal '['
            return ch == "[", p + 1
        return matched != inverted, i + 1
    if c == "\\" and p + 1 < len(pattern):
        return ch == pattern[p + 1], p + 2
    return ch == c, p + 1


def ftrace_match(name: str, pat: FuncPattern) -> bool:
    """Does a function name match a (non-index) pattern? (ftrace_match())"""
    if pat.type == RegexType.MATCH_FULL:
        return name == pat.search
    if pat.type == RegexType.MATCH_FRONT_ONLY:
        return name.startswith(pat.search)
    if pat.type == RegexType.MATCH_MIDDLE_ONLY:
        return pat.search in name
    if pat.type == RegexType.MATCH_END_ONLY:
        return name.endswith(pat.search)
    if pat.type == RegexType.MATCH_GLOB:
        return glob_match(pat.search, name)
    raise ValueError("MATCH_INDEX patterns select by position, not by name")


def match_records(names: list[str], pat: FuncPattern) -> list[int]:
    """Indexes of the records a pattern selects (match_records())."""
    if pat.type == RegexType.MATCH_INDEX:
        try:
            index = int(pat.search, 0) - 1
        except ValueError:
            return []
        return [index] if 0 <= index < len(names) else []
    return [i for i, name in enumerate(names) if ftrace_match(name, pat)]
