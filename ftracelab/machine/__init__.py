"""The emulated machine. The only package that imports unicorn."""
