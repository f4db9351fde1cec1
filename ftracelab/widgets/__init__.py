"""Jupyter widgets over the lab's models: dynamic ftrace call sites being
patched live (:class:`SitePatcher`), a recorded instruction path through
an ftrace trampoline (:class:`TrampolineStepper`), the pages of the
per-CPU ring buffers (:class:`RingBufferView`) and a task's fgraph shadow
stack through a call (:class:`ShadowStackView`), and a probe event being built
and watched (:class:`ProbeBuilder`).

The widgets are thin views: every button calls a method of ``lab.ftrace`` or
browses a recorded :class:`~ftracelab.machine.stepper.StepTrace`. This
subpackage imports ipywidgets, so ``import ftracelab`` does not import it;
use ``from ftracelab.widgets import SitePatcher``.
"""

from __future__ import annotations

from .probe_builder import ProbeBuilder
from .ring_buffer_view import RingBufferView
from .shadow_stack_view import ShadowStackView
from .site_patcher import SitePatcher
from .trampoline_stepper import TrampolineStepper

__all__ = ["ProbeBuilder", "RingBufferView", "ShadowStackView", "SitePatcher", "TrampolineStepper"]
