"""Architecture details (arch/x86/ in Linux). Pure functions over bytes and ints."""
