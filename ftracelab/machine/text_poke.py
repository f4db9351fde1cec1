"""Live kernel text patching (arch/x86/kernel/alternative.c: text_poke_early(),
text_poke_bp_batch(), poke_int3_handler()).

* :meth:`TextPoker.poke_early` writes text directly. The kernel does this at
  boot, before other CPUs run (``text_poke_early``).
* :meth:`TextPoker.begin` starts the three-step int3 protocol on a live
  site. It returns a :class:`TextPoke` that the caller advances one step at a
  time (``step()``), so a notebook can stop between steps and run code. While
  byte 0 holds int3, a CPU that reaches the site traps and
  :meth:`TextPoker.int3_handler` emulates the *new* instruction.

Every write is logged in :attr:`TextPoker.log` with the bytes before and after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..arch.x86_64.text_poke import PokeStep, emulate_new_insn, plan_poke
from ..errors import TextPokeError
from .cpu import Machine


@dataclass(frozen=True)
class PokeLogEntry:
    seq: int
    ip: int
    where: str
    step: str          # "early", "int3", "tail", "first"
    before: bytes      # the whole instruction window before this write
    after: bytes

    def __str__(self) -> str:
        return (f"#{self.seq:<4} {self.ip:#x} <{self.where}> {self.step:<5} "
                f"{self.before.hex(' ')} -> {self.after.hex(' ')}")


@dataclass
class TextPoke:
    """One live replacement of the instruction at ``ip``, advanced step by step."""

    poker: TextPoker
    ip: int
    old: bytes
    new: bytes
    steps: list[PokeStep]
    done: list[str] = field(default_factory=list)
    int3_hits: int = 0

    @property
    def finished(self) -> bool:
        return len(self.done) == len(self.steps)

    @property
    def next_step(self) -> str | None:
        return None if self.finished else self.steps[len(self.done)].name

    def step(self) -> PokeLogEntry:
        """Perform the next write, then sync cores (drop stale translations)."""
        if self.finished:
            raise TextPokeError(f"the poke at {self.ip:#x} is already complete")
        entry = self.poker._apply(self, self.steps[len(self.done)])
        self.done.append(entry.step)
        if self.finished:
            self.poker._active.pop(self.ip, None)
        return entry

    def finish(self) -> list[PokeLogEntry]:
        """Perform all remaining steps."""
        return [self.step() for _ in range(len(self.steps) - len(self.done))]

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{i + 1}</td><td>{s.name}</td><td>+{s.offset}</td>"
            f"<td><code>{s.data.hex(' ')}</code></td>"
            f"<td>{'done' if i < len(self.done) else ('next' if i == len(self.done) else '')}</td></tr>"
            for i, s in enumerate(self.steps))
        where = self.poker.machine.kallsyms.format_ps(self.ip)
        return (f"<b>text poke</b> at <code>{self.ip:#x} &lt;{where}&gt;</code>: "
                f"<code>{self.old.hex(' ')}</code> &rarr; <code>{self.new.hex(' ')}</code>, "
                f"int3 hits: {self.int3_hits}<table><tr><th>step</th><th>write</th><th>at</th>"
                f"<th>bytes</th><th></th></tr>{rows}</table>")

    def __repr__(self) -> str:
        return (f"<TextPoke {self.ip:#x} {self.old.hex()} -> {self.new.hex()} "
                f"done={self.done} int3_hits={self.int3_hits}>")


class TextPoker:
    """The text_poke machinery of one machine, with its log."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.log: list[PokeLogEntry] = []
        self._active: dict[int, TextPoke] = {}
        machine.int3_handlers.append(self.int3_handler)

    def _record(self, ip: int, step: str, before: bytes, after: bytes) -> PokeLogEntry:
        entry = PokeLogEntry(len(self.log), ip, self.machine.kallsyms.format_ps(ip),
                             step, before, after)
        self.log.append(entry)
        return entry

    def poke_early(self, ip: int, new: bytes) -> PokeLogEntry:
        """Write text directly (boot time, nothing else running: text_poke_early)."""
        before = self.machine.read(ip, len(new))
        self.machine.write_text(ip, new)
        return self._record(ip, "early", before, bytes(new))

    def begin(self, ip: int, new: bytes) -> TextPoke:
        """Start replacing the instruction at ``ip`` with ``new`` by the int3 protocol."""
        if ip in self._active:
            raise TextPokeError(f"{ip:#x} is already being poked; finish that poke first")
        emulate_new_insn(ip, new)  # refuse instructions the int3 handler cannot emulate
        old = self.machine.read(ip, len(new))
        poke = TextPoke(self, ip, old, bytes(new), plan_poke(old, new))
        self._active[ip] = poke
        return poke

    def poke(self, ip: int, new: bytes) -> TextPoke:
        """All three steps at once (text_poke_bp)."""
        poke = self.begin(ip, new)
        poke.finish()
        return poke

    def _apply(self, poke: TextPoke, step: PokeStep) -> PokeLogEntry:
        size = len(poke.new)
        before = self.machine.read(poke.ip, size)
        self.machine.write_text(poke.ip + step.offset, step.data)
        after = self.machine.read(poke.ip, size)
        return self._record(poke.ip, step.name, before, after)

    def int3_handler(self, machine: Machine, site: int) -> bool:
        """poke_int3_handler(): emulate the new instruction for a CPU that trapped."""
        poke = self._active.get(site)
        if poke is None:
            return False
        emu = emulate_new_insn(site, poke.new)
        if emu.push is not None:
            machine.push(emu.push)
        machine.set_reg("rip", emu.rip)
        poke.int3_hits += 1
        return True

    @property
    def active(self) -> list[TextPoke]:
        return list(self._active.values())
