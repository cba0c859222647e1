"""Every planner's options as a pydantic model: one description per option, validated in one place.

A planner class names its model in ``options_model``; :class:`~planners.PlannerBase` validates the keyword
options against it when the planner is built, and a bad option is one line naming ``planner.options.<name>``.
The models import no torch, so ``closedloop planners NAME`` can list a planner's options without loading the
planner: :data:`BUILTIN_OPTIONS` maps the import path of each of our planner classes to its model (a test keeps it
in step with the classes' ``options_model``).

Options that depend on the problem (``num_restarts`` and ``n_initial`` defaults that depend on the number of
variables, variable names in ``max_travel``) are completed or checked by the planner against its VOCS.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from closedloop.errors import PlannerError

#: The GP needs at least this many ok observations before the model takes over from the Sobol design.
MIN_OBSERVATIONS = 2

Acquisition = Literal["auto", "qlognei", "logei", "logei-mean"]
Pending = Literal["joint", "believe", "auto"]
Refit = Literal["scheduled", "always"]
NoisePrior = Literal["low", "botorch", "flat", "adaptive"]
FeasibilitySearch = Literal["log-probability", "violation", "probability"]
PerVariable = float | dict[str, float] | None


class PlannerOptions(BaseModel):
    """Base of every planner's options: strict types (YAML gives them typed), unknown options refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    #: One line on what the planner does, for ``closedloop planners``.
    summary: ClassVar[str] = ""


class NoOptions(PlannerOptions):
    """A planner that takes no options beyond the seed."""


class SobolOptions(NoOptions):
    """Options of the ``sobol`` planner (none)."""

    summary = "scrambled Sobol points, blind to the data"


class RandomOptions(NoOptions):
    """Options of the ``random`` planner (none)."""

    summary = "uniform random points, blind to the data"


class BoTorchOptions(PlannerOptions):
    """Options of the ``botorch`` planner (:class:`~planners.BoTorchPlanner`)."""

    summary = (
        "Bayesian optimization: one GP over every outcome, qLogNEI (constrained; qLogNEHVI for several "
        "objectives), discrete and categorical variables, travel cost and maximum travel"
    )

    n_initial: int = Field(5, ge=1, description="Sobol design points; the GP takes over once all but one have results")
    acquisition: Acquisition = Field(
        "auto",
        description="auto (qLogNEI; with constraints, analytic constrained LogEI for one point on noiseless data), "
        "qlognei, logei "
        "(analytic LogEI, constrained LogEI with constraints, against the best feasible observation, one point), "
        "logei-mean (LogEI against the best posterior mean)",
    )
    noise_prior: NoisePrior = Field(
        "adaptive",
        description="prior on the GP noise: low (Gamma(1, 100) in standardized units: lets the GP interpolate "
        "noiseless data), botorch (BoTorch's default), flat (none: the noise as the data have it), adaptive (low, "
        "refit flat when the low fit may explain noise as structure: a lengthscale at its bound; in 5 variables "
        "and up, botorch)",
    )
    low_noise_prior: bool | None = Field(
        None, description="the older spelling of noise_prior: true is low, false is botorch"
    )
    noise_fill: float | None = Field(
        0.3,
        gt=0.0,
        lt=1.0,
        description="while the GP puts more than this share of the outcomes' variance in noise (the data show "
        "only noise so far), propose Sobol points; needs an honest noise fit (noise_prior flat or adaptive)",
    )
    pending: Pending = Field(
        "joint",
        description="how a proposal allows for the points still in flight (pipelining, several instruments): "
        "joint (qLogNEI over the new point and those in flight), believe (once a reading stood out, one objective "
        "and no constraints: UCB on the GP told its own mean at the points in flight, GP-BUCB; helps on a broad "
        "peak, hurts on a narrow one: see the README), auto (believe with 3+ in flight on a broad peak in under 5 "
        "variables, else joint: planners/_pending.py)",
    )
    feasibility_search: FeasibilitySearch = Field(
        "violation",
        description="while no observation is feasible: violation (qLogEI of the total violation, on a GP of each "
        "constraint's violation on a log scale), log-probability (qLogPOF on that GP), probability (qLogPOF on the "
        "GP of every outcome as measured)",
    )
    ucb_beta: float = Field(4.0, gt=0.0, description="UCB's beta for pending: believe (mean + sqrt(beta) * std)")
    peak_box: float | None = Field(
        2.0,
        gt=0.0,
        description="once a reading stands out and the GP fits a lengthscale under 0.1 (a narrow peak or ridge), "
        "look for the next point in a box of this many fitted lengthscales either side of the best posterior mean; "
        "none: always the whole space",
    )
    warm_start: bool = Field(True, description="start GP fits from the last fit's hyperparameters, between cold fits")
    num_restarts: int | None = Field(
        None, ge=1, description="acquisition optimizer restarts; default 2 for one objective in 1-2 variables, else 4"
    )
    raw_samples: int = Field(128, ge=1, description="random samples that choose the optimizer's starting points")
    maxiter: int = Field(200, ge=1, description="most optimizer iterations per restart")
    ftol: float = Field(
        1e-4, gt=0.0, lt=1.0, description="L-BFGS-B stops when an iteration improves the acquisition by less"
    )
    mc_samples: int = Field(128, ge=16, description="quasi-MC samples for the MC acquisition functions")
    reference_point: dict[str, float] | None = Field(
        None, description="{objective: value} for the hypervolume, in each objective's units (2+ objectives)"
    )
    travel_cost: PerVariable = Field(
        None, description="penalty per unit of distance from the current position: a number, or {variable: cost}"
    )
    max_travel: PerVariable = Field(
        None, description="largest move from the current position: a number, or {variable: distance}"
    )
    refit: Refit = Field(
        "scheduled",
        description="scheduled (refit on a geometric schedule above always_refit_below) "
        "or always (refit for every proposal)",
    )
    always_refit_below: int = Field(
        100, ge=MIN_OBSERVATIONS, description="below this many ok observations, refit for every proposal"
    )
    refit_growth: float = Field(1.2, gt=1.0, description="above always_refit_below, refit when the data grew so much")
    max_fit_points: int = Field(300, ge=10, description="fit the hyperparameters to at most this many observations")
    max_model_points: int = Field(
        300,
        ge=10,
        description="above this many ok observations, condition the GP (and the acquisition's baseline) on this many: "
        "half nearest the best feasible point (the Pareto front with several objectives), half a seeded random "
        "sample of the rest; proposal time and memory then stay flat as data grow (docs: benchmarks, proposal time "
        "as data grow); at or below it, proposals are exactly as without it",
    )

    @model_validator(mode="after")
    def _restarts_fit_samples(self) -> BoTorchOptions:
        if self.low_noise_prior is not None and "noise_prior" in self.model_fields_set:
            raise ValueError("give noise_prior or low_noise_prior, not both")
        if self.num_restarts is not None and self.raw_samples < self.num_restarts:
            raise ValueError(f"raw_samples ({self.raw_samples}) must be >= num_restarts ({self.num_restarts})")
        if not math.isfinite(self.refit_growth):
            raise ValueError("refit_growth must be finite")
        return self


class TurboOptions(PlannerOptions):
    """Options of the ``turbo`` planner (:class:`~planners.TurboPlanner`)."""

    summary = "TuRBO-1 trust-region Bayesian optimization, for six or more continuous variables"

    n_initial: int | None = Field(
        None, ge=MIN_OBSERVATIONS, description="Sobol points of each run's design; default max(2 d, 5)"
    )
    batch_size: int = Field(1, ge=1, description="observations per success/failure step; the points asked at a time")
    acquisition: Literal["ts", "qlognei"] = Field(
        "ts", description="ts (Thompson sampling, the paper's choice) or qlognei inside the trust region"
    )
    n_candidates: int | None = Field(
        None, ge=1, description="Thompson-sampling candidates; default min(5000, max(1000, 100 d))"
    )
    max_fit_points: int = Field(200, ge=MIN_OBSERVATIONS, description="most observations the GP is fit to")
    num_restarts: int = Field(4, ge=1, description="optimizer restarts (qlognei only)")
    raw_samples: int = Field(128, ge=1, description="random samples choosing the restarts (qlognei only)")

    @model_validator(mode="after")
    def _restarts_fit_samples(self) -> TurboOptions:
        if self.raw_samples < self.num_restarts:
            raise ValueError(f"raw_samples ({self.raw_samples}) must be >= num_restarts ({self.num_restarts})")
        return self


class GridOptions(PlannerOptions):
    """Options of the ``grid`` planner (:class:`~planners.GridPlanner`)."""

    summary = "a full factorial grid, shuffled or in order"

    points_per_dim: int | dict[str, int] = Field(
        5, description="points per variable: one number for all, or {variable: count} (others get 5)"
    )
    shuffle: bool = Field(True, description="walk the grid in a seeded random order (true) or in order (false)")

    @field_validator("points_per_dim")
    @classmethod
    def _counts(cls, value: int | dict[str, int]) -> int | dict[str, int]:
        for name, k in value.items() if isinstance(value, dict) else [("", value)]:
            if k < 1:
                raise ValueError(f"must be >= 1{f' for {name!r}' if name else ''}")
        return value


class ManualOptions(PlannerOptions):
    """Options of the ``manual`` planner (:class:`~planners.ManualPlanner`)."""

    summary = "points from a list or a file, then whatever an operator queues with closedloop add"

    points: list[dict[str, Any]] | None = Field(None, description="points to queue first, each {variable: value}")
    file: str | None = Field(None, description="a CSV (header row of names), YAML or JSON file of points, queued next")


#: Our planners' options models by the import path of the planner class (the value of its entry point).
BUILTIN_OPTIONS: dict[str, type[PlannerOptions]] = {
    "planners.bayes:BoTorchPlanner": BoTorchOptions,
    "planners.turbo:TurboPlanner": TurboOptions,
    "planners.sobol:SobolPlanner": SobolOptions,
    "planners.baselines:RandomPlanner": RandomOptions,
    "planners.baselines:GridPlanner": GridOptions,
    "planners.baselines:ManualPlanner": ManualOptions,
}


_TYPE_TAGS = {"int", "float", "str", "bool", "none", "dict", "list"}


def _type_tag(part: Any) -> bool:
    """Whether a pydantic error location part names a member of a union type, not a field or key."""
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part)


def validate_options(model: type[PlannerOptions], options: dict[str, Any]) -> PlannerOptions:
    """``options`` checked against ``model``.

    Raises:
        PlannerError: one line naming the first bad option as ``planner.options.<name>``.
    """
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        error = max(exc.errors(), key=lambda e: len(e["loc"]))  # in a union, the branch that got furthest
        where = ".".join(str(part) for part in error["loc"] if not _type_tag(part))
        field = error["loc"][0] if error["loc"] else ""
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            known = ", ".join(model.model_fields) or "none"
            raise PlannerError(f"planner.options.{where}: unknown option (options: {known})") from None
        given = f", got {error['input']!r}" if field and error["type"] != "missing" else ""
        path = f"planner.options.{where}" if where else "planner.options"
        raise PlannerError(f"{path}: {message}{given}") from None


def describe(model: type[PlannerOptions]) -> list[dict[str, Any]]:
    """Each option of ``model`` as ``{name, type, default, description}`` (JSON-ready), in declaration order."""
    out = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        kind = str(annotation).replace("typing.", "") if get_args(annotation) else getattr(annotation, "__name__", "")
        default = None if info.is_required() else info.default
        out.append({"name": name, "type": kind, "default": default, "description": info.description or ""})
    return out
