"""Numerical failures of fitting and acquisition: what kind each is, and the order a planner recovers in.

A failure is known by the exception BoTorch, linear_operator or torch raises (:func:`failure_kind`):

- ``nan_gradient``: ``botorch.exceptions.errors.OptimizationGradientError`` (NaN in the acquisition's gradient);
- ``not_psd``: linear_operator's ``NotPSDError`` or torch's ``LinAlgError`` (a covariance not positive definite);
- ``nan``: linear_operator's ``NanError``, or a ``ValueError`` a torch distribution raises on NaN parameters;
- ``fit``: ``botorch.exceptions.ModelFittingError`` (the fit did not converge in any of BoTorch's attempts);
- ``nan_acquisition``: ``botorch.exceptions.errors.CandidateGenerationError``, raised by :func:`check_finite` when
  the optimizer returns a candidate or an acquisition value that is not finite.

The BoTorch planner recovers in the order of :data:`STEPS`, each tried once after the one before failed: the same
model with the optimizer restarted elsewhere (``restarts``), the GP refitted from hyperparameters drawn from their
priors (``refit``), refitted and optimized with more Cholesky jitter (``jitter``, :func:`more_jitter`), an analytic
acquisition function on that model (``simpler acquisition``); and last a space-filling point, said so in ``why``.

Nothing here imports torch at import time: :class:`~planners.foreign.Foreign` uses :func:`failure_kind` on any
generator's exceptions, and the exception classes are looked up only in the modules already loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: The kinds of numerical failure, as counted in a planner's ``recoveries``.
KINDS = ("nan_gradient", "not_psd", "nan", "fit", "nan_acquisition")

#: The recovery steps after a failed first attempt, in order (see the module's text).
STEPS = ("restarts", "refit", "jitter", "simpler acquisition")
#: What is proposed when every step failed.
SPACE_FILLING = "space-filling"

#: (module, attribute path, kind), most specific first; a module not loaded has none of its exceptions raised.
_EXCEPTIONS = (
    ("botorch.exceptions.errors", "OptimizationGradientError", "nan_gradient"),
    ("botorch.exceptions.errors", "CandidateGenerationError", "nan_acquisition"),
    ("botorch.exceptions.errors", "ModelFittingError", "fit"),
    ("linear_operator.utils.errors", "NotPSDError", "not_psd"),
    ("linear_operator.utils.errors", "NanError", "nan"),
    ("torch", "linalg.LinAlgError", "not_psd"),
)

#: Cholesky jitter (float64, float32) and tries of the ``jitter`` step; linear_operator's defaults are 1e-8, 1e-6
#: and 3 tries, each try ten times the jitter of the one before.
JITTER_DOUBLE = 1e-6
JITTER_FLOAT = 1e-4
JITTER_TRIES = 6


def _lookup(module: str, path: str) -> Any:
    found: Any = sys.modules.get(module)
    for name in path.split("."):
        found = getattr(found, name, None)
    return found


def failure_kind(exc: BaseException) -> str | None:
    """The kind of numerical failure ``exc`` is (one of :data:`KINDS`), or None when it is not one."""
    for module, path, kind in _EXCEPTIONS:
        cls = _lookup(module, path)
        if isinstance(cls, type) and isinstance(exc, cls):
            return kind
    if isinstance(exc, ValueError) and "torch" in sys.modules and "nan" in str(exc).lower():
        return "nan"  # torch.distributions' argument validation: "found invalid values: tensor([nan, ...])"
    return None


@contextmanager
def more_jitter() -> Iterator[None]:
    """GPyTorch's Cholesky jitter raised to :data:`JITTER_DOUBLE` (:data:`JITTER_FLOAT`) with
    :data:`JITTER_TRIES` tries inside the block (``gpytorch.settings.cholesky_jitter``, ``cholesky_max_tries``)."""
    from gpytorch import settings

    with (
        settings.cholesky_jitter(float_value=JITTER_FLOAT, double_value=JITTER_DOUBLE),
        settings.cholesky_max_tries(JITTER_TRIES),
    ):
        yield


def check_finite(candidates: Any, values: Any) -> None:
    """Raise BoTorch's ``CandidateGenerationError`` when a candidate or an acquisition value (tensors) is NaN or
    infinite (a value of ``-inf``, a probability that underflowed, is allowed)."""
    import torch
    from botorch.exceptions.errors import CandidateGenerationError

    if not bool(torch.isfinite(candidates).all()) or bool((torch.isnan(values) | (values == torch.inf)).any()):
        raise CandidateGenerationError("the acquisition optimizer returned a NaN or infinite candidate or value")
