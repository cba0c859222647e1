"""The test suite. Importing this package first makes the math libraries take their portable code paths.

MKL (torch's BLAS and LAPACK), ATen's own vector kernels and OpenBLAS (numpy's and scipy's) each pick code for the
CPU they find, and a GP fit followed by a multi-start optimisation turns their last-bit differences into different
proposals; the seeded-proposal tests pin exact points, so they would pass on one x86-64 CPU and fail on another.
These variables must be set before any of those libraries loads: this ``__init__`` runs first, under pytest (before
``conftest.py`` and every plugin that imports numpy; zarr's is disabled in pyproject.toml) and under
``python -m tests....`` alike, and the commands tests start inherit them.

The number of threads counts too: torch splits its reductions by thread, and one thread instead of two moves a
seeded two-objective proposal. Two is what this project's machines and CI have; a larger machine runs the tests with
two threads per worker as well.
"""

import os

PORTABLE_MATH = {
    "MKL_CBWR": "COMPATIBLE",
    "ATEN_CPU_CAPABILITY": "default",
    "OPENBLAS_CORETYPE": "Prescott",
    "OMP_NUM_THREADS": "2",
}
for _name, _value in PORTABLE_MATH.items():
    os.environ.setdefault(_name, _value)
