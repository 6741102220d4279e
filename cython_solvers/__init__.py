"""Compiled (Cython) kernels of xbar-circuit and their validating Python wrappers.

The ``_*.pyx`` extension modules trust their inputs; import the wrapper modules
(:mod:`.assembly`, ...) which check shapes, dtypes and values first.
"""

# This folder is a subpackage of xbar_circuit (setup.py maps it); imported under its bare
# name from a source tree, its relative imports would fail obscurely or load a second copy.
if __name__ != "xbar_circuit.cython_solvers":
    raise ImportError(
        f"cython_solvers/ is installed as 'xbar_circuit.cython_solvers'; import it under that "
        f"name, not as {__name__!r} (install the package first: pip install -e .)"
    )
