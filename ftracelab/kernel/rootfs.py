"""The files the mini-kernel boots with (fs/ramfs.c's ``ramfs_files[]``).

The lab writes each file's name, contents and device latency into the
kernel's table before the first syscall, the way an initramfs is unpacked
at boot. Layout of ``struct ramfs_file`` (include/kernel.h, fs/ramfs.c)::

    0x00  char   name[32]
    0x20  struct dentry  (d_name, d_inode)            filled in by ramfs_lookup()
    0x30  struct inode:  +0x00 i_ino   +0x08 i_mode  +0x10 i_size
                         +0x18 i_data  +0x20 i_capacity
                         +0x28 i_atime +0x30 i_mtime +0x38 i_read_latency_ns
                         +0x40 i_fop   +0x48 i_rwsem +0x68 i_lock
                         +0x70 i_cached_upto
    0xa8  char   data[8192]
    size 0x20a8

A file with a read latency lives on the slow disk (null_blk): its pages are
read in through the block layer the first time, and i_cached_upto says how
far the page cache holds it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import KernelImageError
from ..machine.cpu import Machine

RAMFS_NAME_LEN = 32
RAMFS_DATA_SIZE = 8192
RAMFS_MAX_FILES = 16
INODE_OFFSET = 0x30
I_SIZE = INODE_OFFSET + 0x10
I_READ_LATENCY = INODE_OFFSET + 0x38
I_CACHED_UPTO = INODE_OFFSET + 0x70
DATA_OFFSET = 0xA8
RAMFS_FILE_SIZE = DATA_OFFSET + RAMFS_DATA_SIZE


@dataclass(frozen=True)
class RamFile:
    path: str
    data: bytes
    read_latency_ns: int = 0   # per read() from the "device"; 0 = page cache hit


def _text(lines: int, width: int = 72) -> bytes:
    return "".join(f"{i:05d} " + "lorem ipsum dolor sit amet "[: width - 7].ljust(width - 7, ".") + "\n"
                   for i in range(lines)).encode()


DEFAULT_FILES = (
    RamFile("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
            b"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
            b"student:x:1000:1000:student:/home/student:/bin/sh\n"),
    RamFile("/etc/motd", b"Welcome to the ftracelab mini-kernel.\n"),
    RamFile("/var/log/syslog", _text(100)),
    RamFile("/data/slow.bin", bytes(range(256)) * 32, read_latency_ns=50_000),
    RamFile("/tmp/out", b""),
)


def _table(machine: Machine) -> int:
    table = next((s for s in machine.vmlinux.symbols if s.name == "ramfs_files"), None)
    if table is None or table.size != RAMFS_MAX_FILES * RAMFS_FILE_SIZE:
        raise KernelImageError("ramfs_files[] in vmlinux does not match rootfs.py's layout")
    return table.addr


def set_disk_latency(machine: Machine, path: str, latency_ns: int,
                     files: tuple[RamFile, ...] = DEFAULT_FILES) -> None:
    """Put ``path`` on the slow disk with this mean latency per page, and drop it
    from the page cache (echo 1 > drop_caches, for one file)."""
    index = next((i for i, f in enumerate(files) if f.path == path), None)
    if index is None:
        raise ValueError(f"{path}: not a file of the lab's root file system "
                         f"({', '.join(f.path for f in files)})")
    base = _table(machine) + index * RAMFS_FILE_SIZE
    machine.write(base + I_READ_LATENCY, struct.pack("<Q", latency_ns))
    machine.write(base + I_CACHED_UPTO, struct.pack("<Q", 0))


def populate(machine: Machine, files: tuple[RamFile, ...] = DEFAULT_FILES) -> None:
    """Write the file table into the kernel's ramfs_files[] and nr_ramfs_files."""
    table_addr = _table(machine)
    if len(files) > RAMFS_MAX_FILES:
        raise ValueError(f"at most {RAMFS_MAX_FILES} files")
    for i, f in enumerate(files):
        name = f.path.encode()
        if len(name) >= RAMFS_NAME_LEN or len(f.data) > RAMFS_DATA_SIZE:
            raise ValueError(f"{f.path}: name over {RAMFS_NAME_LEN - 1} bytes "
                             f"or data over {RAMFS_DATA_SIZE} bytes")
        base = table_addr + i * RAMFS_FILE_SIZE
        machine.write(base, name.ljust(RAMFS_NAME_LEN, b"\0"))
        machine.write(base + I_SIZE, struct.pack("<q", len(f.data)))
        machine.write(base + I_READ_LATENCY, struct.pack("<Q", f.read_latency_ns))
        machine.write(base + DATA_OFFSET, f.data)
    machine.write_u32(machine.symbols["nr_ramfs_files"], len(files))
