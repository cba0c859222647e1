"""BoTorch's warnings in normal use: logged, not shown; every other warning passes through unchanged."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from botorch.exceptions.warnings import (
    BadInitialCandidatesWarning,
    BotorchWarning,
    InputDataWarning,
    OptimizationWarning,
)
from linear_operator.utils.warnings import NumericalWarning

_log = logging.getLogger(__name__)

#: Warnings BoTorch emits in normal use (a fit that retried, a restart that stopped early, a foreign
#: point just outside the bounds). They are logged, not shown; any other warning passes through unchanged.
_EXPECTED_WARNINGS = (InputDataWarning, OptimizationWarning, BadInitialCandidatesWarning, NumericalWarning)
#: With outcome constraints, some posterior samples of the observed points are all infeasible even when an
#: observed point is feasible; BoTorch then falls back to a lower bound and says so. Expected, logged.
_ALL_INFEASIBLE_SAMPLES = "When all training points are infeasible"
#: BoTorch retries an acquisition optimization whose L-BFGS-B run stopped abnormally, and says so. Expected, logged.
_RETRYING_OPTIMIZATION = "Optimization failed"


@contextmanager
def expected_warnings_logged() -> Iterator[None]:
    """Log BoTorch's expected warnings raised inside the block; re-emit every other warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if (
            issubclass(w.category, _EXPECTED_WARNINGS)
            or (issubclass(w.category, BotorchWarning) and str(w.message).startswith(_ALL_INFEASIBLE_SAMPLES))
            or (issubclass(w.category, RuntimeWarning) and str(w.message).startswith(_RETRYING_OPTIMIZATION))
        ):
            _log.info("%s: %s", w.category.__name__, w.message)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
