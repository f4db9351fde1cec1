"""The cheapest way into Python from emulated code: a raw code hook.

Unicorn's binding wraps every hook call and every ``reg_read`` in several
Python layers; a ftrace callback needs four argument registers per call, and
the binding's ``reg_read`` is most of the cost (shared/reference/unicorn-notes.md).
:class:`RawCallHook` registers a ctypes callback directly with ``uc_hook_add``
on one address, and the emulated code stores the four arguments in a
host-backed mailbox page just before it, so the hook reads plain memory.

Exceptions cannot cross the C boundary (ctypes would print and drop them),
so the hook stops the emulator and hands the exception to the machine, which
raises :class:`~ftracelab.errors.HookError` after ``emu_start`` returns.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

from unicorn import UC_HOOK_CODE
from unicorn.unicorn_py3.unicorn import HOOK_CODE_CFUNC, uclib

from .cpu import Machine

ArgsCallback = Callable[[int, int, int, int], None]

class RawCallHook:
    """Call ``callback(a0, a1, a2, a3)`` whenever a CPU reaches ``address``.

    The four values are the first four words of the machine's mailbox page,
    which the code before ``address`` filled (see lab_python_func in
    ftrace_64.S): reading them costs no call into Unicorn.
    """

    def __init__(self, machine: Machine, address: int, callback: ArgsCallback) -> None:
        self.machine = machine
        self.address = address
        self.callback = callback
        self._mbox = machine.mailbox
        self._cfunc = HOOK_CODE_CFUNC(self._on_code)
        self._handle = ctypes.c_size_t()
        self._install()

    def _install(self) -> None:
        uch = self.machine.uc._uch
        status = uclib.uc_hook_add(uch, ctypes.byref(self._handle), UC_HOOK_CODE,
                                   ctypes.cast(self._cfunc, ctypes.c_void_p), None,
                                   self.address, self.address)
        if status:
            raise RuntimeError(f"uc_hook_add failed with unicorn error {status}")
        self.machine.uc.ctl_remove_cache(self.address, self.address + 1)

    def _on_code(self, uch: object, address: int, size: int, user_data: object) -> None:
        m = self._mbox
        try:
            self.callback(m[0], m[1], m[2], m[3])
        except BaseException as exc:  # noqa: BLE001 - re-raised by Machine.run as HookError
            self.machine.fail_from_hook(exc)

    def remove(self) -> None:
        if self._handle.value:
            uclib.uc_hook_del(self.machine.uc._uch, self._handle)
            self._handle = ctypes.c_size_t()
            self.machine.uc.ctl_remove_cache(self.address, self.address + 1)
