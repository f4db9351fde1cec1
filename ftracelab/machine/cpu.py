"""The emulated SMP machine: one Unicorn x86-64 CPU time-shared by N saved contexts.

Unicorn facts this module is built on (see ``shared/reference/unicorn-notes.md``):

* Kernel addresses need ``UC_TLB_VIRTUAL`` plus a TLB-fill hook; the hook
  identity-maps each page with its region's permissions, and is also where
  a bad access is first seen, so it records the access for :class:`KernelFault`.
* One Uc instance with one saved context per CPU (atomics stay atomic);
  ``%gs`` points at each CPU's ``pcpu_hot``.
* The ``syscall`` instruction only calls a hook; the hook performs SYSCALL's
  register effects (RCX, R11, RIP = entry_SYSCALL_64). Unicorn then adds the
  instruction length to the RIP the hook wrote, so the hook compensates.
* A hook added after a block was translated sees nothing until that block is
  flushed: breakpoints and single-stepping flush the translation cache.
* After writing code, ``ctl_remove_cache`` must drop the stale translation.
"""

from __future__ import annotations

import ctypes
import dataclasses
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import capstone
from unicorn import (
    UC_ARCH_X86,
    UC_HOOK_CODE,
    UC_HOOK_INSN,
    UC_HOOK_INTR,
    UC_HOOK_TLB_FILL,
    UC_MEM_FETCH,
    UC_MEM_WRITE,
    UC_MODE_64,
    UC_PROT_EXEC,
    UC_PROT_READ,
    UC_PROT_WRITE,
    UC_TLB_VIRTUAL,
    Uc,
    UcError,
)
from unicorn import x86_const as X

from ..errors import EmulationTimeout, HookError, KernelFault, MachineError
from .elf import ElfImage
from .kallsyms import Kallsyms
from .memory import (
    FTRACE_DATA_BASE,
    FTRACE_DATA_SIZE,
    LAB_MAILBOX,
    MODULES_SIZE,
    MODULES_VADDR,
    NO_DEADLINE,
    PAGE_SIZE,
    PCPU_CLOCK_NS,
    PCPU_CPU_NUMBER,
    PCPU_NEXT_EVENT,
    PCPU_NR_SYSCALLS,
    PCPU_RAND_STATE,
    PCPU_SELF,
    PCPU_SLICE_END,
    PCPU_TOP_OF_STACK,
    TRACE_PAGES_BASE,
    TRACE_PAGES_SIZE,
    USER_ARGS,
    USER_MMAP_BASE,
    USER_MMAP_SIZE,
    USER_STACK_SLOT,
    USER_STACK_SLOTS,
    USER_STACKS_BASE,
    MemoryMap,
    Region,
    kstack_range,
    page_align,
    percpu_addr,
)

SYSCALL_INSN_SIZE = 2
HLT = 0xF4
X86_EFLAGS_IF = 0x200
KERNEL_HALF = 0xFFFF_8000_0000_0000
KERNEL_CS, KERNEL_DS, USER_CS, USER_DS = 0x10, 0x18, 0x33, 0x2B
DEFAULT_TIMEOUT_S = 20.0

Int3Handler = Callable[["Machine", int], bool]
"""Called with (machine, site) when a CPU executes int3 at ``site``; True if handled."""

REGS = {name: getattr(X, f"UC_X86_REG_{name.upper()}") for name in (
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
    "r12", "r13", "r14", "r15", "rip", "eflags")}


@dataclass
class Stop:
    """Why a run returned: "halt" (CPU idle), "until", "breakpoint" or "step"."""

    reason: str
    cpu: int
    rip: int
    where: str


@dataclass
class _Pending:
    fault: tuple[str, int] | None = None      # (access, address) seen by the TLB hook
    hook_error: BaseException | None = None
    reason: str | None = None
    intr: int | None = None
    skip_bp_once: int | None = None
    steps_left: int = 0
    breakpoints: dict[int, int] = field(default_factory=dict)   # addr -> hook handle


class Machine:
    """The emulated machine: memory map, CPUs, run loop, faults and reset."""

    def __init__(self, vmlinux: ElfImage, user: ElfImage, ncpus: int = 2, seed: int = 0) -> None:
        if not 1 <= ncpus <= 8:
            raise ValueError("ncpus must be between 1 and 8 (NR_CPUS of the mini-kernel)")
        self.vmlinux, self.user, self.ncpus, self.seed = vmlinux, user, ncpus, seed
        text = next(s for s in vmlinux.segments if s.execute)
        self.kallsyms = Kallsyms(vmlinux.symbols, text.vaddr, text.vaddr + text.memsz)
        self.symbols = {s.name: s.addr for s in vmlinux.symbols}
        self.user_symbols = {s.name: s.addr for s in user.symbols}
        self.int3_handlers: list[Int3Handler] = []
        self.host_write_hook: Callable[[int, bytes], None] | None = None
        self._boot_hardware()

    # ---- construction and reset ------------------------------------------------
    def _boot_hardware(self) -> None:
        uc: Any = Uc(UC_ARCH_X86, UC_MODE_64)   # the binding is only partly typed
        uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
        self.uc = uc
        self.memory = MemoryMap()
        for img in (self.vmlinux, self.user):
            for seg in img.segments:
                start = seg.vaddr & ~(PAGE_SIZE - 1)
                kind = "text" if seg.execute else ("data" if seg.write else "rodata")
                self._map(Region(f"{img.name}:{kind}", start,
                                 page_align(seg.vaddr + seg.memsz) - start,
                                 seg.read, seg.write, seg.execute))
                uc.mem_write(seg.vaddr, seg.data)
        self._map(Region("user:mmap", USER_MMAP_BASE, USER_MMAP_SIZE, True, True, False))
        self._map(Region("user:stacks", USER_STACKS_BASE, USER_STACK_SLOT * USER_STACK_SLOTS,
                         True, True, False))
        self._map(Region("user:args", USER_ARGS, PAGE_SIZE, True, True, False))
        self._map(Region("ftrace:data", FTRACE_DATA_BASE, FTRACE_DATA_SIZE, True, True, False))
        # Host-backed: the host reads what emulated code stores here with no call.
        self.mailbox = (ctypes.c_uint64 * (PAGE_SIZE // 8))()
        self.memory.add(Region("lab:mailbox", LAB_MAILBOX, PAGE_SIZE, True, True, False))
        uc.mem_map_ptr(LAB_MAILBOX, PAGE_SIZE, UC_PROT_READ | UC_PROT_WRITE,
                       ctypes.addressof(self.mailbox))
        self._map(Region("modules:text", MODULES_VADDR, MODULES_SIZE, True, False, True))
        self._map(Region("trace:pages", TRACE_PAGES_BASE, TRACE_PAGES_SIZE, True, True, False))
        for cpu in range(self.ncpus):
            self._map(Region(f"percpu:{cpu}", percpu_addr(cpu), PAGE_SIZE, True, True, False))
            bottom, top = kstack_range(cpu)
            self._map(Region(f"kstack:{cpu}", bottom, top - bottom, True, True, False))
        self._pending = _Pending()
        uc.hook_add(UC_HOOK_TLB_FILL, self._on_tlb_fill)
        uc.hook_add(UC_HOOK_INSN, self._on_syscall, None, 1, 0, X.UC_X86_INS_SYSCALL)
        uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        self._step_hook: int | None = None
        self._in_call = False
        self._depth = 0
        # syscall_init(): MSR_LSTAR = entry_SYSCALL_64. User space reads it from
        # here to perform SYSCALL natively (see user/workloads.c).
        if "lstar" in self.user_symbols:
            self.write_u64(self.user_symbols["lstar"], self.symbols["entry_SYSCALL_64"])
        # The firmware's part of SMP bring-up: per-CPU areas, stacks and %gs,
        # then CPU 0 starts at start_kernel and the others at start_secondary.
        self._contexts = []
        self.write_u32(self.symbols["nr_cpu_ids"], self.ncpus)
        for cpu in range(self.ncpus):
            base = percpu_addr(cpu)
            _, top = kstack_range(cpu)
            self.write_u64(self.symbols["per_cpu_hot"] + 8 * cpu, base)
            self.write_u64(base + PCPU_SELF, base)
            self.write_u32(base + PCPU_CPU_NUMBER, cpu)
            self.write_u64(base + PCPU_TOP_OF_STACK, top)
            self.write_u64(base + PCPU_RAND_STATE, _seed_state(self.seed, cpu))
            self.write_u64(base + PCPU_SLICE_END, NO_DEADLINE)
            self.write_u64(base + PCPU_NEXT_EVENT, NO_DEADLINE)
            uc.reg_write(X.UC_X86_REG_GS_BASE, base)
            uc.reg_write(X.UC_X86_REG_RSP, top - 8)
            uc.reg_write(X.UC_X86_REG_EFLAGS, 0x2)
            uc.reg_write(X.UC_X86_REG_RIP,
                         self.symbols["start_kernel" if cpu == 0 else "start_secondary"])
            self._contexts.append(uc.context_save())
        self.cpu = 0
        uc.context_restore(self._contexts[0])

    def _map(self, region: Region) -> None:
        self.memory.add(region)
        perms = ((UC_PROT_READ if region.read else 0) | (UC_PROT_WRITE if region.write else 0)
                 | (UC_PROT_EXEC if region.execute else 0))
        self.uc.mem_map(region.start, region.size, perms)

    def reset(self) -> None:
        """Power-cycle: fresh memory from the images, fresh CPUs. Hooks are re-added."""
        self.kallsyms.clear_dynamic()
        self._boot_hardware()

    # ---- memory access from the host ------------------------------------------
    def read(self, addr: int, size: int) -> bytes:
        return bytes(self.uc.mem_read(addr, size))

    def write(self, addr: int, data: bytes) -> None:
        self.uc.mem_write(addr, bytes(data))
        if self.host_write_hook is not None:      # a recording wants the host's writes too
            self.host_write_hook(addr, bytes(data))

    def read_u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def write_u64(self, addr: int, value: int) -> None:
        self.write(addr, struct.pack("<Q", value & 0xFFFF_FFFF_FFFF_FFFF))

    def write_u32(self, addr: int, value: int) -> None:
        self.write(addr, struct.pack("<I", value & 0xFFFF_FFFF))

    def write_text(self, addr: int, data: bytes) -> None:
        """Write kernel text from the host and drop stale translations of it."""
        self.write(addr, data)
        self.uc.ctl_remove_cache(addr, addr + len(data))

    def percpu_u64(self, cpu: int, offset: int) -> int:
        return self.read_u64(percpu_addr(cpu) + offset)

    def clock_ns(self, cpu: int) -> int:
        """The CPU's virtual clock (pcpu_hot.clock_ns, what sched_clock() returns)."""
        return self.percpu_u64(cpu, PCPU_CLOCK_NS)

    def nr_syscalls(self, cpu: int) -> int:
        return self.percpu_u64(cpu, PCPU_NR_SYSCALLS)

    # ---- registers and CPUs ----------------------------------------------------
    def select_cpu(self, cpu: int) -> None:
        """Make ``cpu`` the one whose registers the Uc instance holds."""
        if not 0 <= cpu < self.ncpus:
            raise ValueError(f"CPU {cpu} does not exist (the lab has {self.ncpus})")
        if cpu != self.cpu:
            self._contexts[self.cpu] = self.uc.context_save()
            self.uc.context_restore(self._contexts[cpu])
            self.cpu = cpu

    def reg(self, name: str) -> int:
        return int(self.uc.reg_read(REGS[name]))

    def set_reg(self, name: str, value: int) -> None:
        self.uc.reg_write(REGS[name], value & 0xFFFF_FFFF_FFFF_FFFF)

    def registers(self) -> dict[str, int]:
        return {name: self.reg(name) for name in REGS}

    def push(self, value: int) -> None:
        rsp = self.reg("rsp") - 8
        self.write_u64(rsp, value)
        self.set_reg("rsp", rsp)

    def where(self, addr: int) -> str:
        """An address as ``%pS``, or as user symbol+offset for user code."""
        if self.kallsyms.lookup(addr) is not None:
            return self.kallsyms.format_ps(addr)
        best = max(((n, a) for n, a in self.user_symbols.items() if a <= addr),
                   key=lambda na: na[1], default=None)
        if best and addr - best[1] < 0x1000 and 0x400000 <= addr < 0x800000:
            return f"{best[0]}+{addr - best[1]:#x} [user]"
        return f"{addr:#x}"

    # ---- interrupts and calls into the kernel ----------------------------------
    def interrupts_enabled(self) -> bool:
        return bool(self.reg("eflags") & X86_EFLAGS_IF)

    def deliver_interrupt(self, entry: int) -> bool:
        """Take an interrupt on the selected CPU, as the hardware does, if IF is set.

        From user space the CPU switches to the task's kernel stack (TSS.sp0 =
        pcpu_hot.top_of_stack); it pushes SS, RSP, RFLAGS, CS, RIP on a 16-byte
        aligned stack, clears IF and jumps to the vector's entry code.
        """
        flags = self.reg("eflags")
        if not flags & X86_EFLAGS_IF:
            return False
        rip, rsp = self.reg("rip"), self.reg("rsp")
        user = rip < KERNEL_HALF
        new_sp = self.percpu_u64(self.cpu, PCPU_TOP_OF_STACK) if user else rsp & ~0xF
        cs, ss = (USER_CS, USER_DS) if user else (KERNEL_CS, KERNEL_DS)
        frame = struct.pack("<5Q", rip, cs, flags, rsp, ss)
        self.write(new_sp - len(frame), frame)
        self.set_reg("rsp", new_sp - len(frame))
        self.set_reg("eflags", flags & ~X86_EFLAGS_IF)
        self.set_reg("rip", entry)
        return True

    def call(self, cpu: int, function: str, *args: int,
             timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
        """Run a kernel function to completion on ``cpu`` and put the CPU back as
        it was (an smp_call_function() from the lab). Returns %rax."""
        nested = self.running
        if nested and cpu != self.cpu:
            raise MachineError(f"from inside a callback, calls run on the current CPU "
                               f"({self.cpu}), not CPU {cpu}")
        self.select_cpu(cpu)
        saved = self.uc.context_save()
        outer, self._in_call = self._in_call, True
        outer_pending = dataclasses.replace(self._pending)
        base = percpu_addr(cpu)
        slice_end = self.read_u64(base + PCPU_SLICE_END)
        self.write_u64(base + PCPU_SLICE_END, NO_DEADLINE)
        try:
            self.set_reg("rsp", (self.reg("rsp") - 512) & ~0xF)
            self.push(self.symbols["lab_call_return"])
            for name, value in zip(("rdi", "rsi", "rdx", "rcx", "r8", "r9"), args, strict=False):
                self.set_reg(name, value)
            stop = self.run(start=self.symbols[function], timeout_s=timeout_s)
            if stop.rip != self.symbols["lab_call_return"] + 1:
                raise MachineError(f"{function}() on CPU {cpu} stopped at {stop.where}")
            return self.reg("rax")
        finally:
            self._in_call = outer
            self._pending = outer_pending
            self.write_u64(base + PCPU_SLICE_END, slice_end)
            self.uc.context_restore(saved)

    # ---- hooks -----------------------------------------------------------------
    def _on_tlb_fill(self, uc: Uc, vaddr: int, access: int, entry, _ud: object) -> bool:  # type: ignore[no-untyped-def]
        kind = "fetch" if access == UC_MEM_FETCH else "write" if access == UC_MEM_WRITE else "read"
        region = self.memory.find(vaddr)
        if region is None or not region.allows(kind):
            self._pending.fault = (kind, vaddr)
            if region is None:
                return False
        assert region is not None
        entry.paddr = vaddr & ~(PAGE_SIZE - 1)
        entry.perms = ((UC_PROT_READ if region.read else 0) | (UC_PROT_WRITE if region.write else 0)
                       | (UC_PROT_EXEC if region.execute else 0))
        return True

    def _on_syscall(self, uc: Uc, _ud: object) -> None:
        rip = int(uc.reg_read(X.UC_X86_REG_RIP))
        uc.reg_write(X.UC_X86_REG_RCX, rip + SYSCALL_INSN_SIZE)
        uc.reg_write(X.UC_X86_REG_R11, uc.reg_read(X.UC_X86_REG_EFLAGS))
        # Unicorn adds the insn length to whatever RIP the hook leaves.
        uc.reg_write(X.UC_X86_REG_RIP, self.symbols["entry_SYSCALL_64"] - SYSCALL_INSN_SIZE)

    def _on_interrupt(self, uc: Uc, intno: int, _ud: object) -> None:
        if intno == 3:
            site = int(uc.reg_read(X.UC_X86_REG_RIP)) - 1
            try:
                for handler in self.int3_handlers:
                    if handler(self, site):
                        return
            except BaseException as exc:  # noqa: BLE001 - re-raised after emu_start
                self._pending.hook_error = exc
                uc.emu_stop()
                return
            uc.reg_write(X.UC_X86_REG_RIP, site)
        self._pending.intr = intno
        uc.emu_stop()

    def fail_from_hook(self, exc: BaseException) -> None:
        """A hook's Python code raised: stop the CPU; run() raises HookError."""
        if self._pending.hook_error is None:
            self._pending.hook_error = exc
        self.uc.emu_stop()

    @property
    def running(self) -> bool:
        """True while emulated code runs (so this is called from inside a hook)."""
        return self._depth > 0

    def _on_breakpoint(self, uc: Uc, addr: int, _size: int, _ud: object) -> None:
        if self._in_call:                 # the lab's own calls into the kernel run through
            return
        if self._pending.skip_bp_once == addr:
            self._pending.skip_bp_once = None
            return
        self._pending.reason = "breakpoint"
        uc.emu_stop()

    def _on_step(self, uc: Uc, addr: int, _size: int, _ud: object) -> None:
        if self._pending.steps_left <= 0:
            self._pending.reason = "step"
            uc.emu_stop()
        self._pending.steps_left -= 1

    # ---- breakpoints and stepping ----------------------------------------------
    def add_breakpoint(self, addr: int) -> None:
        if addr not in self._pending.breakpoints:
            self._pending.breakpoints[addr] = self.uc.hook_add(
                UC_HOOK_CODE, self._on_breakpoint, None, addr, addr)
            self.uc.ctl_remove_cache(addr, addr + 1)

    def remove_breakpoint(self, addr: int) -> None:
        handle = self._pending.breakpoints.pop(addr, None)
        if handle is not None:
            self.uc.hook_del(handle)
            self.uc.ctl_remove_cache(addr, addr + 1)

    @property
    def breakpoints(self) -> list[int]:
        return sorted(self._pending.breakpoints)

    # ---- the run loop ----------------------------------------------------------
    def run(self, cpu: int | None = None, start: int | None = None, until: int = 0,
            steps: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Stop:
        """Run a CPU from ``start`` (default: where it stopped) until it halts, reaches
        ``until``, hits a breakpoint or has executed ``steps`` instructions."""
        if cpu is not None:
            self.select_cpu(cpu)
        pc = self.reg("rip") if start is None else start
        pending = self._pending
        pending.fault = pending.hook_error = pending.reason = pending.intr = None
        if pc in pending.breakpoints:
            pending.skip_bp_once = pc   # resuming from a breakpoint runs its insn
        if steps is not None:
            self._enter_step_mode(steps)
        # Unicorn's timeout runs a timer thread per emu_start, which breaks when
        # emu_start nests (a callback calling into the kernel): only the outermost
        # run has one.
        timeout_us = int(timeout_s * 1e6) if self._depth == 0 else 0
        self._depth += 1
        try:
            self.uc.emu_start(pc, until, timeout=timeout_us)
        except UcError as err:
            raise self._fault(err) from None
        finally:
            self._depth -= 1
            if steps is not None:
                self._leave_step_mode()
            pending.skip_bp_once = None
        if pending.hook_error is not None:
            raise HookError(f"a Python callback raised on CPU {self.cpu}: "
                            f"{pending.hook_error!r}") from pending.hook_error
        rip = self.reg("rip")
        if pending.intr is not None:
            raise self._fault(None, detail=f"exception vector {pending.intr}")
        reason = pending.reason
        if reason is None:
            if until and rip == until:
                reason = "until"
            elif self.read(rip - 1, 1)[0] == HLT:
                reason = "halt"
            else:
                raise EmulationTimeout(
                    f"CPU {self.cpu} still running after {timeout_s} s at "
                    f"{self.where(rip)}; lab.reset() reboots the lab")
        return Stop(reason, self.cpu, rip, self.where(rip))

    def _enter_step_mode(self, steps: int) -> None:
        self._pending.steps_left = steps
        self._step_hook = self.uc.hook_add(UC_HOOK_CODE, self._on_step, None, 1, 0)
        self.uc.ctl_flush_tb()

    def _leave_step_mode(self) -> None:
        if self._step_hook is not None:
            self.uc.hook_del(self._step_hook)
            self._step_hook = None
            self.uc.ctl_flush_tb()

    def _fault(self, err: UcError | None, detail: str = "") -> KernelFault:
        rip = self.reg("rip")
        seen = self._pending.fault
        if seen is not None:
            access, page = seen
            # The TLB hook sees only the page; like CR2, report the exact address.
            exact = self._operand_address(rip) if access != "fetch" else None
            address = exact if exact is not None and exact & ~(PAGE_SIZE - 1) == page else page
            region = self.memory.find(address)
            note = (f"{region.name} is {region.perms}" if region else "unmapped address")
            detail = f"{note}; {detail}" if detail else note
            fault = KernelFault(self.cpu, rip, self.where(rip), access, address, detail)
        else:
            why = str(err) if err is not None else detail
            fault = KernelFault(self.cpu, rip, self.where(rip), "instruction", None, why)
        self._pending.fault = None
        return fault

    def _operand_address(self, rip: int) -> int | None:
        return _operand_address_of(self, rip)


class EntryCounter:
    """Counts how often execution reaches a set of addresses (e.g. function starts).

    One code hook per address; adding and removing them flushes the
    translation cache, so counting costs only while it is installed.
    """

    def __init__(self, machine: Machine, addresses: list[int]) -> None:
        self.machine = machine
        self.count = 0
        self._hooks = [machine.uc.hook_add(UC_HOOK_CODE, self._hit, None, a, a)
                       for a in addresses]
        machine.uc.ctl_flush_tb()

    def _hit(self, *_: object) -> None:
        self.count += 1

    def close(self) -> int:
        for h in self._hooks:
            self.machine.uc.hook_del(h)
        self._hooks = []
        self.machine.uc.ctl_flush_tb()
        return self.count


_CS = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_CS.detail = True


def _operand_address_of(machine: Machine, rip: int) -> int | None:
    """Effective address of the memory operand of the instruction at ``rip``."""
    try:
        insn = next(_CS.disasm(machine.read(rip, 15), rip, 1))
    except (StopIteration, UcError):
        return None
    for op in insn.operands:
        if op.type != capstone.x86.X86_OP_MEM:
            continue
        mem = op.mem

        def value(reg: int) -> int:
            if reg == 0:
                return 0
            if reg == capstone.x86.X86_REG_RIP:
                return rip + insn.size
            return int(machine.uc.reg_read(getattr(X, f"UC_X86_REG_{insn.reg_name(reg).upper()}")))
        addr = value(mem.base) + value(mem.index) * mem.scale + mem.disp
        if mem.segment == capstone.x86.X86_REG_GS:
            addr += int(machine.uc.reg_read(X.UC_X86_REG_GS_BASE))
        return addr & 0xFFFF_FFFF_FFFF_FFFF
    return None


def _seed_state(seed: int, cpu: int) -> int:
    """Non-zero xorshift state derived from (seed, cpu) with splitmix64."""
    z = (seed * 0x9E3779B97F4A7C15 + cpu + 1) & 0xFFFF_FFFF_FFFF_FFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFF_FFFF_FFFF_FFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFF_FFFF_FFFF_FFFF
    return (z ^ (z >> 31)) or 1
