"""Build script: maps the top-level folders into the package and cythonizes the kernels.

``netlists/`` installs as ``xbar_circuit.netlists``, ``cython_solvers/`` as
``xbar_circuit.cython_solvers`` and ``validation/`` as
``xbar_circuit.validation``; every ``cython_solvers/_*.pyx`` becomes an extension
module ``xbar_circuit.cython_solvers._<name>``.
"""

from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent

# The package cannot solve anything without its compiled kernels: a source tree or an
# sdist without them must stop the build here, not install a package that fails later.
KERNEL_SOURCES = sorted((HERE / "cython_solvers").glob("_*.pyx"))
if not KERNEL_SOURCES:
    raise SystemExit(
        f"xbar-circuit: no kernel sources cython_solvers/_*.pyx under {HERE.resolve()}; "
        "the compiled solver cannot be built (an sdist must include them: see MANIFEST.in)"
    )

extensions = [
    Extension(
        f"xbar_circuit.cython_solvers.{pyx.stem}",
        [str(pyx.relative_to(HERE))],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
    )
    for pyx in KERNEL_SOURCES
]

setup(
    packages=[
        "xbar_circuit",
        "xbar_circuit.backends",
        "xbar_circuit.mapping",
        "xbar_circuit.tables",
        "xbar_circuit.netlists",
        "xbar_circuit.cython_solvers",
        "xbar_circuit.validation",
    ],
    package_dir={
        "xbar_circuit": "xbar_circuit",
        "xbar_circuit.netlists": "netlists",
        "xbar_circuit.cython_solvers": "cython_solvers",
        "xbar_circuit.validation": "validation",
    },
    # The committed ngspice reference corpus ships with the package, so that
    # `xbar validate` works from any install, not only from a clone. MANIFEST.in only
    # shapes the sdist: the wheel's data is exactly this list.
    include_package_data=False,
    package_data={
        "xbar_circuit": ["py.typed"],
        "xbar_circuit.validation": ["references/*.json", "references/*/*", "sweeps/*.yaml"],
    },
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3"},
        # The kernels share inline chain primitives (cython_solvers/_chains.pxd).
        include_path=[str(HERE / "cython_solvers")],
        annotate=False,
    ),
    zip_safe=False,
)
