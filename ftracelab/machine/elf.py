"""Loading the mini-kernel's ELF files with pyelftools (the lab's bootloader side).

An :class:`ElfImage` keeps what the lab needs from an executable: loadable
segments with their permissions, the symbol table and named sections such as
``__mcount_loc``. It holds bytes only; nothing here touches the emulator.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.constants import P_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from ..errors import KernelImageError


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD segment: ``data`` is file-backed, the rest up to ``memsz`` is zero."""

    vaddr: int
    memsz: int
    data: bytes
    read: bool
    write: bool
    execute: bool


@dataclass(frozen=True)
class Symbol:
    name: str
    addr: int
    size: int
    kind: str      # "FUNC", "NOTYPE", "OBJECT"
    bind: str      # "GLOBAL", "LOCAL", "WEAK"
    section: str   # name of the section it is defined in ("" if absolute)


@dataclass(frozen=True)
class ElfImage:
    name: str
    raw: bytes
    entry: int
    segments: tuple[Segment, ...]
    symbols: tuple[Symbol, ...]
    sections: dict[str, tuple[int, bytes]]

    def section(self, name: str) -> tuple[int, bytes]:
        """(address, bytes) of a named section."""
        try:
            return self.sections[name]
        except KeyError:
            raise KernelImageError(f"{self.name}: no section {name!r}") from None

    def read(self, addr: int, size: int) -> bytes:
        """Bytes of the image as linked (before the lab changes anything)."""
        for seg in self.segments:
            if seg.vaddr <= addr and addr + size <= seg.vaddr + seg.memsz:
                padded = seg.data.ljust(seg.memsz, b"\0")
                off = addr - seg.vaddr
                return padded[off:off + size]
        raise KernelImageError(f"{self.name}: {addr:#x}+{size} is not in a loadable segment")


def load_elf(source: Path | bytes, name: str | None = None) -> ElfImage:
    """Parse an x86-64 ELF executable from a path or bytes."""
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    label = name or (source.name if isinstance(source, Path) else "image")
    try:
        elf = ELFFile(io.BytesIO(raw))
        if elf["e_machine"] != "EM_X86_64" or elf["e_type"] != "ET_EXEC":
            raise KernelImageError(f"{label}: not an x86-64 executable")
        segments = tuple(
            Segment(vaddr=seg["p_vaddr"], memsz=seg["p_memsz"], data=seg.data(),
                    read=bool(seg["p_flags"] & P_FLAGS.PF_R),
                    write=bool(seg["p_flags"] & P_FLAGS.PF_W),
                    execute=bool(seg["p_flags"] & P_FLAGS.PF_X))
            for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD")
        names = {i: s.name for i, s in enumerate(elf.iter_sections())}
        symtab = elf.get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            raise KernelImageError(f"{label}: no symbol table (was it stripped?)")
        symbols = tuple(
            Symbol(name=s.name, addr=s["st_value"], size=s["st_size"],
                   kind=s["st_info"]["type"].removeprefix("STT_"),
                   bind=s["st_info"]["bind"].removeprefix("STB_"),
                   section=names.get(s["st_shndx"], "") if isinstance(s["st_shndx"], int) else "")
            for s in symtab.iter_symbols()
            if s.name and s["st_info"]["type"] in ("STT_FUNC", "STT_NOTYPE", "STT_OBJECT"))
        sections = {s.name: (s["sh_addr"], s.data() if s["sh_type"] != "SHT_NOBITS" else b"")
                    for s in elf.iter_sections() if s["sh_flags"] & 0x2}  # SHF_ALLOC
        return ElfImage(label, raw, elf["e_entry"], segments, symbols, sections)
    except (ELFError, ValueError, KeyError) as exc:
        raise KernelImageError(f"{label}: malformed ELF: {exc}") from exc
