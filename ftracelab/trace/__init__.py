"""ftrace itself, mirroring kernel/trace/ (ftrace.c, fgraph.c, ring_buffer.c ...)."""
