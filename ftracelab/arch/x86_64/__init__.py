"""x86-64: instruction encodings and the text-poke protocol (arch/x86/kernel/)."""
