"""Compiled Cython extension modules (built from ``native/*.pyx``)."""
