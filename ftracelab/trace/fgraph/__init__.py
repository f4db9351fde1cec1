"""kernel/trace/fgraph.c of Linux 6.12: the function-graph shadow stack
(:mod:`.stack`, the words and the kernel's operations on them) and its users in
the emulated kernel (:mod:`.ops`, ``lab.fgraph``)."""

from .ops import Fgraph, FgraphOps, StackEvent, TaskStack, stack_events
from .stack import (
    FGRAPH_ARRAY_SIZE,
    FGRAPH_FRAME_OFFSET,
    SHADOW_STACK_MAX_OFFSET,
    SHADOW_STACK_OFFSET,
    SHADOW_STACK_SIZE,
    ControlWord,
    FgraphType,
    Frame,
    ShadowStack,
    WordRow,
)

__all__ = [
    "FGRAPH_ARRAY_SIZE", "FGRAPH_FRAME_OFFSET", "SHADOW_STACK_MAX_OFFSET", "SHADOW_STACK_OFFSET",
    "SHADOW_STACK_SIZE", "ControlWord", "Fgraph", "FgraphOps", "FgraphType", "Frame", "ShadowStack",
    "StackEvent", "TaskStack", "WordRow", "stack_events",
]
