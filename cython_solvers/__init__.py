"""Compiled (Cython) kernels of xbar-circuit and their validating Python wrappers.

The ``_*.pyx`` extension modules trust their inputs; import the wrapper modules
(:mod:`.assembly`, ...) which check shapes, dtypes and values first.
"""
