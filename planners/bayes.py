"""Bayesian optimization with BoTorch: GPs on the observations and log-improvement acquisition functions."""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import nullcontext
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction, LogExpectedImprovement, qLogNoisyExpectedImprovement
from botorch.acquisition.analytic import LogConstrainedExpectedImprovement, LogProbabilityOfFeasibility
from botorch.acquisition.logei import qLogProbabilityOfFeasibility
from botorch.acquisition.objective import GenericMCObjective
from botorch.models.model import Model
from botorch.optim import optimize_acqf, optimize_acqf_mixed
from botorch.optim.initializers import gen_batch_initial_conditions
from botorch.sampling.normal import SobolQMCNormalSampler
from gest_api.vocs import VOCS
from torch import Tensor

from closedloop.errors import PlannerError
from planners._acquisition import (
    believed_ucb,
    categorical_combinations,
    constraint_bounds,
    first_output,
    infer_reference_point,
    outcome_constraints,
    parse_reference_point,
)
from planners._base import near_any
from planners._feasibility import log_violations, violation_acquisition
from planners._fitting import (
    ScheduledFitting,
    expected_warnings_logged,
    noise_share,
    noiseless,
    peak_box,
    stands_out,
    stood_out,
)
from planners._large import model_subset, violations
from planners._multiobjective import FRONT_STARTS, hypervolume_improvement
from planners._pending import choose_pending
from planners._recovery import SPACE_FILLING, STEPS, check_finite, failure_kind, more_jitter
from planners._travel import Travelling, per_variable
from planners.options import (
    MIN_OBSERVATIONS,
    Acquisition,
    BoTorchOptions,
    FeasibilitySearch,
    NoisePrior,
    Pending,
    Refit,
)
from planners.sobol import sobol_points

_log = logging.getLogger(__name__)

#: What the operator is told made a point (the proposal's ``why``), by acquisition function.
ACQUISITION_NAMES = {
    "qLogNoisyExpectedImprovement": "qLogNEI",
    "LogExpectedImprovement": "LogEI",
    "qLogExpectedImprovement": "qLogEI",
    "LogConstrainedExpectedImprovement": "constrained LogEI",
    "qLogNoisyExpectedHypervolumeImprovement": "qLogNEHVI",
    "qLogProbabilityOfFeasibility": "probability of feasibility",
    "LogProbabilityOfFeasibility": "analytic probability of feasibility",
    "qLogExpectedLessViolation": "expected reduction of the total violation",
    "UpperConfidenceBound": "UCB, believing the points in flight",
}


#: How far apart the torch seeds of successive recovery steps are.
RESEED = 7919


def acquisition_name(acq: AcquisitionFunction) -> str:
    """The operator's name of ``acq`` (:data:`ACQUISITION_NAMES`, a subclass by its BoTorch class's)."""
    for cls in type(acq).__mro__:
        if cls.__name__ in ACQUISITION_NAMES:
            return ACQUISITION_NAMES[cls.__name__]
    return type(acq).__name__


def starting_at(
    point: Tensor,
    acq_function: AcquisitionFunction,
    bounds: Tensor,
    q: int,
    num_restarts: int,
    raw_samples: int,
    **kwargs: Any,
) -> Tensor:
    """BoTorch's initial conditions (``gen_batch_initial_conditions``), the last restart's first point moved to
    ``point`` (``d``, unit cube, clipped to ``bounds``): an ``ic_generator`` for ``optimize_acqf``."""
    initial = gen_batch_initial_conditions(acq_function, bounds, q, num_restarts, raw_samples, **kwargs).clone()
    initial[-1, 0] = point.to(initial).clamp(bounds[0], bounds[1])
    return initial


class BoTorchPlanner(ScheduledFitting, Travelling):
    """Bayesian optimization: a Sobol start, then GPs and a log-improvement acquisition function.

    The first ``n_initial`` points come from a seeded scrambled Sobol design, so a cold start is
    space-filling, and so do those proposed while the design's results are not in (:attr:`results_for_model`).
    After that, a GP (float64, inputs in the unit cube, ``Standardize`` on the outcome; ``MixedSingleTaskGP`` with a
    categorical kernel when there are categorical variables) is fit to the ok observations of each outcome with
    ``fit_gpytorch_mll``. Failed points are never fit.

    Refitting: with fewer than ``always_refit_below`` ok observations (or with ``refit="always"``) the GP
    hyperparameters are fitted afresh for every proposal. From there they are fitted only when the number
    of ok observations reaches the next size of a geometric schedule (``always_refit_below``, then each
    size ``refit_growth`` times the one before, see :func:`refit_size`), to the *first* that many ok
    observations in the order ingested; between refits the last fitted hyperparameters are reused and the
    GP is conditioned on all the ok observations (the ``Standardize`` transform recomputed from all of
    them). A fit to more than ``max_fit_points`` observations uses a seeded random subset of that many;
    the GP is still conditioned on all (up to ``max_model_points``, below). A scheduled fit starts from the
    default hyperparameters, so from ``always_refit_below`` on what the planner proposes depends on the data
    alone: a planner rebuilt by re-ingesting the same observations in the same order fits once, at the last
    scheduled size, and then proposes exactly the points the original would. :attr:`n_fits` and
    :attr:`n_reuses` count both cases.
    Below ``always_refit_below``, with ``warm_start`` (the default) a fit starts from the defaults (cold)
    only when the ok observations have grown by :data:`~planners._fitting.COLD_FIT_GROWTH` since the last
    cold fit, and otherwise from the hyperparameters of the planner's last fit (warm), which halves the
    fitting time. Warm fits alone cannot leave the noise's lower bound once a fit took the data as noiseless
    (on the noisy beamline, median regret 0.49 against 0.13 with every fit cold, over 10 seeds); the cold
    fits find the noise that more data reveal. A planner rebuilt on resume starts with a cold fit, so its
    first proposals can differ a little from those the original would make.

    Large data: above ``max_model_points`` ok observations the GP is conditioned on that many of them, and qLogNEI's
    (qLogNEHVI's) baseline is that subset: half nearest the incumbents (the best feasible point, the least violating
    one while none is feasible, the Pareto front for several objectives), half a seeded random sample of the rest
    (:mod:`planners._large`). The hyperparameters are fitted as above, and at or below ``max_model_points``
    nothing changes, so proposals there are exactly as without it. An exact GP's cost grows as the cube of the
    observations and its memory as their square (see ``benchmarks/proposal_scaling.py``).

    Which acquisition function:

    - one objective, no constraints: ``qLogNoisyExpectedImprovement`` (noise-aware: it integrates over the
      noisy incumbent), with the pending points as ``X_pending`` so points in flight are not proposed again.
      For one point with nothing pending, ``acquisition="logei"`` uses ``LogExpectedImprovement`` against the
      best observed value instead, ``"logei-mean"`` against the best posterior mean (both cheaper; on
      Hartmann6 over 10 seeds LogEI's median regret was 0.034 against qLogNEI's 0.0022). With
      ``pending="believe"``, one point with points in flight, once a reading stood out: UCB on the GP told its own
      mean there (:func:`~planners._acquisition.believed_ucb`);
    - while no ok observation is feasible, the search for feasibility (``feasibility_search``, said in ``why``): by
      default the expected reduction of the total violation
      (:class:`~planners._feasibility.qLogExpectedLessViolation`) on a GP of the constraints alone, each as its
      violation on a log scale (:mod:`planners._feasibility`); ``log-probability`` is
      ``qLogProbabilityOfFeasibility`` on that GP, which is tiny everywhere while the GP is sure of violations it
      extrapolates (the welded beam's seed 5); ``probability`` is that acquisition on the GP of every outcome as
      measured, which on the spring problem, whose constraint outputs span many orders of magnitude, left half the
      seeds with no feasible point after 40 experiments (see ``benchmarks/feasibility.py``);
    - one objective with constraints: ``qLogNoisyExpectedImprovement`` with the constraints as BoTorch outcome
      constraints. With the default ``acquisition="auto"``, one point with nothing pending on data the GP fits as
      noiseless (noise variance below :data:`~planners._fitting.NOISELESS_BELOW`) uses the analytic
      ``LogConstrainedExpectedImprovement`` against the best feasible observed value instead (``acquisition="logei"``
      uses it whatever the noise). It once stalled short of an optimum on a constraint's boundary (constrained
      Branin); one optimizer restart at the best feasible observation (below) cured that, and on ``gramacy`` it
      ends far nearer the optimum than the quasi-MC ``qLogExpectedImprovement`` that replaced it for a while
      (``docs/benchmarks/constrained.md``);
    - two or more objectives: ``qLogNoisyExpectedHypervolumeImprovement`` against ``reference_point`` or, without
      it, the nadir of the observed objectives less 10% of their range (:mod:`planners._multiobjective` says why
      the noisy form even on noiseless data).

    All the outcomes (objectives, then constraint outputs) are modelled by one batched multi-output GP: an
    independent GP per outcome, all fitted and evaluated together in one batch.

    Noise (``noise_prior``, ``noise_fill``): ``low`` puts a Gamma(1, 100) prior on the GP's noise in standardized
    units, so a nearly noiseless instrument is interpolated (on Branin it beats BoTorch's default prior
    100-fold). On a flat, noisy background that prior makes the GP explain the noise as structure: it fits noise
    1e-8 and lengthscales at BoTorch's lower bound (0.025), and qLogNEI then chases noise bumps in steps of that
    size (the creep seen on narrow peaks). ``adaptive`` fits with the low prior and, when a lengthscale sits at its
    bound (:func:`~planners._fitting.interpolates_noise`), fits again with no prior on the noise; ``noise_fill``
    then proposes Sobol points while that honest fit puts more than the given share of the variance in noise and
    no reading stands out of it (:func:`~planners._fitting.stands_out`): the data show only noise, so the space
    is filled until the peak shows. In :data:`~planners._fitting.HIGH_DIMENSIONAL` variables and up, ``adaptive``
    is BoTorch's own prior instead: there the data are too sparse for the low prior's fits, and a GP that takes
    most of the data as noise follows a spot's weak, wide flank up. The harness's ablations
    (``benchmarks/planners.py``, README) chose them.

    Failed points (a failed, aborted or interrupted run, a rejected proposal; see :mod:`planners`) are never fit,
    stay pending for good (``X_pending``), and no proposal lies within :data:`~planners._base.SAME_POINT` of one,
    of a pending point or of another point of its batch (a repeat is replaced by a fresh Sobol point).

    The acquisition optimizer (``optimize_acqf``, L-BFGS-B) starts from ``num_restarts`` of ``raw_samples`` random
    points, chosen by BoTorch's initialization heuristic; with outcome constraints, one of the restarts starts at the
    best feasible observation instead (:func:`starting_at`). An optimum on a constraint's edge, where BoTorch's
    smoothed feasibility is nearly a step, is reached from there in fewer steps: on constrained Branin
    (``branin_disk``, 5 seeds) 27 evaluations of the acquisition a proposal instead of 48, ending nearer the optimum
    (see the README's benchmarks). BoTorch's own ``sample_around_best`` does not serve: it cannot see the
    constraints of ``qLogExpectedImprovement`` and samples around the best point whether feasible or not. With several
    objectives it does serve: the random points are joined by as many perturbations of the observations on the
    Pareto front (:data:`~planners._multiobjective.FRONT_STARTS`).

    Discrete variables are optimized relaxed and rounded to the nearest allowed value; categorical ones by
    ``optimize_acqf_mixed`` over every combination of categories when there are at most
    :data:`~planners._acquisition.MAX_ENUMERATED`, otherwise relaxed and rounded too. A point that rounds
    onto one already in the batch or in flight is replaced by the next Sobol point that does not.

    Movement: the *current position* is the later of the last :meth:`set_position` and the variables of the
    last ingested point (the instrument is where it last measured); before either, there is none and both
    movement options are inactive. ``travel_cost`` subtracts ``sum_j cost_j * |x_j - position_j|`` (summed
    over the points of a batch) from the acquisition value with ``PenalizedAcquisitionFunction``; as the
    acquisition values are logarithms, a cost ``c`` means each unit of travel must multiply the expected
    improvement by ``e**c`` to pay for itself. ``max_travel`` keeps every proposal, design points included,
    inside the box ``position +- max_travel`` intersected with the bounds; in a batch, *each* point is within
    ``max_travel`` of the current position (not of the point before it). Categorical variables take no part.

    Numerical failures (a NaN gradient, a covariance not positive definite, a fit that does not converge, a NaN
    acquisition value) never cost a proposal: they are recovered from in the order of :mod:`planners._recovery`
    (other restarts, a refit from the priors, more jitter, an analytic acquisition function, and last a Sobol point),
    counted by kind in :attr:`recoveries` (and :attr:`diagnostics`), and said in ``why``.

    Reproducible: the same seed and the same ingested data give the same points (the torch RNG is forked and
    seeded from ``seed`` and the number of points known for every call, a scheduled fit from ``seed`` and
    its size, and global state is left untouched).

    Args:
        vocs: the problem (see :class:`~planners.PlannerBase`); constraints, several objectives, discrete and
            categorical variables are all supported.
        seed: seed for the design, the fit and the acquisition optimizer; ``None`` draws one.
        **options: see :class:`~planners.options.BoTorchOptions` (``closedloop planners botorch`` lists them).

    Raises:
        PlannerError: the VOCS is unsupported or an option is out of range (``planner.options.<name>: ...``).
    """

    supports_constraints = True
    supports_multi_objective = True
    supports_discrete = True
    options_model: ClassVar[type[BoTorchOptions]] = BoTorchOptions
    options: BoTorchOptions

    def __init__(self, vocs: VOCS, *, seed: int | None = None, **options: Any) -> None:
        super().__init__(vocs, seed=seed, **options)
        o = self.options
        #: Optimizer restarts: the option, or 2 for one objective in one or two variables and 4 otherwise (on
        #: Hartmann6, 2 restarts hit the optimum in 7 of 10 seeds against 8; on BraninCurrin the hypervolume gap over
        #: 5 seeds was 1.96 against 1.71; on Branin and the beamline 2 were as good and 20-30 % faster).
        self.num_restarts = o.num_restarts or (2 if self.dim <= 2 and len(self.objective_names) == 1 else 4)
        if o.raw_samples < self.num_restarts:
            raise PlannerError(
                f"planner.options.raw_samples: must be >= num_restarts ({self.num_restarts}), got {o.raw_samples}"
            )
        self.n_initial = o.n_initial
        self.raw_samples = o.raw_samples
        self.maxiter = o.maxiter
        self.ftol = o.ftol
        self.acquisition: Acquisition = o.acquisition
        #: How a proposal allows for the points in flight (see :class:`~planners.options.BoTorchOptions`).
        self.pending_rule: Pending = o.pending
        self.ucb_beta = o.ucb_beta
        #: Quasi-MC samples for the MC acquisition functions (BoTorch's default is 512).
        self.mc_samples = o.mc_samples
        #: The prior on the GP noise (see :class:`~planners.options.BoTorchOptions`).
        self.noise_prior: NoisePrior = o.noise_prior
        if o.low_noise_prior is not None:
            self.noise_prior = "low" if o.low_noise_prior else "botorch"
        self.warm_start = o.warm_start
        #: Propose Sobol points while the GP puts more than this share of the objectives' variance in noise.
        self.noise_fill = o.noise_fill
        #: Half-width, in fitted lengthscales, of the box the next point is sought in around a narrow peak found.
        self.peak_box = o.peak_box
        #: Proposals sought inside :func:`~planners._fitting.peak_box` rather than the whole space.
        self.n_peak_boxes = 0
        self.refit: Refit = o.refit
        self.always_refit_below = o.always_refit_below
        self.refit_growth = o.refit_growth
        self.max_fit_points = o.max_fit_points
        #: Above this many ok observations the GP is conditioned on a subset of them (:mod:`planners._large`).
        self.max_model_points = o.max_model_points
        #: Proposals whose GP hyperparameters were fitted successfully (one count for all the GPs of a proposal).
        self.n_fits = 0
        #: Proposals that reused the hyperparameters of the last scheduled fit.
        self.n_reuses = 0
        self._fitted: tuple[int, dict[str, Tensor]] | None = None  # (size, hyperparameters)
        #: (ok observations at the last cold fit, the last fit's hyperparameters), for warm starts
        self._warm: tuple[int, dict[str, Tensor]] | None = None
        #: Numerical failures of fitting and acquisition caught while proposing, by kind (:mod:`planners._recovery`).
        self.recoveries: Counter[str] = Counter()
        #: The step that recovered from them (:data:`~planners._recovery.STEPS`, or ``space-filling``), by step.
        self.recovered_by: Counter[str] = Counter()
        self.feasibility_search: FeasibilitySearch = o.feasibility_search
        self.reference_point = parse_reference_point(o.reference_point, self.objective_names, self.signs)
        self.travel_cost = per_variable("travel_cost", o.travel_cost, self.space, default=0.0)
        self.max_travel = per_variable("max_travel", o.max_travel, self.space, default=float("inf"))
        self._unit_bounds = torch.stack([torch.zeros(self.dim), torch.ones(self.dim)]).to(torch.float64)
        self._position: Tensor | None = None
        self._position_at = -1  # number of records when set_position was called
        #: (records ingested then, the model) of the last model-based proposal, for :meth:`predict`
        self._last_model: tuple[int, Model] | None = None

    @property
    def diagnostics(self) -> dict[str, Any]:
        """The planner's counters: fits, reuses, peak boxes, numerical failures by kind (``recoveries``) and by the
        step that recovered from them (``recovered_by``)."""
        return {
            "n_fits": self.n_fits,
            "n_reuses": self.n_reuses,
            "n_peak_boxes": self.n_peak_boxes,
            "recoveries": dict(self.recoveries),
            "recovered_by": dict(self.recovered_by),
        }

    # -- proposing -----------------------------------------------------------------------------------------

    @property
    def results_for_model(self) -> int:
        """The ok observations the GP waits for: the design's results, all but one, and at least
        :data:`~planners.options.MIN_OBSERVATIONS`; Sobol points until then.

        All but one: a pipelined instrument runs one design point while the next proposal is made, so one instrument
        is served as the sequential loop is. Several instruments, with more of the design in flight, would otherwise
        fit the first GP to two results and propose nearly blind: four instruments, 30 experiments, 24 seeds, median
        regret 3.97 against 25.3 on ``spot2`` and 0.555 against 0.623 on the beamline (see the README).
        """
        return max(MIN_OBSERVATIONS, self.n_initial - 1)

    def _design(self, n: int, skip: int, box: Tensor | None) -> Tensor:
        """``n`` Sobol points from ``skip`` on, inside ``box``, discrete columns snapped."""
        U = torch.from_numpy(sobol_points(self.dim, n, seed=self.seed, skip=skip))
        if box is not None:
            U = box[0] + U * (box[1] - box[0])
        return self._snap(U, box)

    def train_tensors(self) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`~planners.PlannerBase.train_outcomes` as float64 tensors: ``X: n x d``, ``Y: n x m``, ``C: n x k``."""
        X, Y, C = self.train_outcomes()
        return torch.from_numpy(X), torch.from_numpy(Y), torch.from_numpy(C)

    def _snap(self, U: Tensor, box: Tensor | None) -> Tensor:
        """:meth:`Space.snap_unit <planners._space.Space.snap_unit>` on tensors."""
        return torch.from_numpy(self.space.snap_unit(U.detach().numpy(), None if box is None else box.numpy()))

    def _propose(self, n: int) -> np.ndarray:
        return self._points(n).detach().numpy()

    def _points(self, n: int) -> Tensor:
        """``n`` new points in the unit cube, ``n x d`` (see :meth:`PlannerBase._propose`)."""
        known = self.n_known
        box = self._travel_box()
        n_design = min(n, max(0, self.n_initial - known))
        unmeasured = self._unmeasured_output()
        if self.n_observed < self.results_for_model or unmeasured is not None:
            n_design = n
        # failed points (rejected, aborted, faulty) stay pending for good: the acquisition steers away from them
        avoid = torch.from_numpy(np.concatenate([self.pending_unit(), self.failed_unit()]))
        design = self._distinct(self._design(n_design, known, box), avoid, None, box, skip=known + n)
        waiting = "design: the model waits for the design's results"
        if unmeasured is not None and self.n_observed >= self.results_for_model:
            waiting = f"design: the model waits for values of '{unmeasured}' (missing at the points so far)"
        reasons = ["initial design" if known + i < self.n_initial else waiting for i in range(n_design)]
        if n_design == n:
            self._explain(reasons)
            return design
        X, Y, C = self.train_tensors()
        X_pending = torch.cat([avoid, design])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + known)
            candidates, why, local = self._recovering(X, Y, C, X_pending, n - n_design, box)
        if candidates is None:
            self._explain([why] * n)
            return self._distinct(self._design(n, known, box), avoid, None, box, skip=known + n)
        self._explain(reasons + [why] * (n - n_design))
        exact = X if (self.space.cat_dims or self.space.discrete_dims) else None
        candidates = self._distinct(candidates, X_pending, exact, local, skip=known + n)
        return torch.cat([design, candidates])

    def _recovering(
        self, X: Tensor, Y: Tensor, C: Tensor, X_pending: Tensor, q: int, box: Tensor | None
    ) -> tuple[Tensor | None, str, Tensor | None]:
        """The model's ``q`` points (``q x d``), why they were chosen, and the box they were sought in; or None and
        why Sobol points go instead (the GP sees only noise, or no step recovered from a numerical failure).

        A numerical failure (:func:`~planners._recovery.failure_kind`) is counted in :attr:`recoveries` and the next
        step of :data:`~planners._recovery.STEPS` is tried, the torch RNG reseeded for each; the first attempt is the
        planner's usual proposal, so on data without failures nothing changes. Any other exception is raised.
        """
        failed: list[str] = []
        model: Model | None = None
        search = self._searching_feasibility()
        full, keep = (X, Y, C), self._model_subset(X, Y, C)
        if keep is not None:  # large data: the model and the acquisition see a subset (planners._large)
            X, Y, C = X[keep], Y[keep], C[keep]
        G = log_violations(self.vocs, C) if search else None
        for step in ("first", *STEPS):
            if step == "simpler acquisition" and (q > 1 or (G is None and Y.shape[1] > 1)):
                continue  # analytic acquisition functions take one point and one objective
            if failed:
                torch.manual_seed(self.seed + self.n_known + RESEED * len(failed))
            try:
                with more_jitter() if step in ("jitter", "simpler acquisition") else nullcontext():
                    if step == "first" and G is not None:
                        model = self._feasibility_model(X, G)
                    elif step == "first":
                        model = self._model(*full, keep=keep)
                        self._last_model = (len(self._records), model)
                        if self.noise_fill is not None and noise_share(model) > self.noise_fill:
                            if not stands_out(full[1][:, 0]):
                                # no structure yet, only noise, and no reading stands out: keep filling the space
                                return None, "Sobol: only noise so far", box
                    elif model is None or step in ("refit", "jitter"):
                        model = self._feasibility_model(X, G, True) if G is not None else self._fit(X, Y, C, None, True)
                    local = box if G is not None else self._local_box(model, X, Y, C, box)
                    candidates, used = self._optimize(model, X, Y, C, X_pending, q, local, step, G)
            except Exception as exc:
                kind = failure_kind(exc)
                if kind is None:
                    raise
                failed.append(kind)
                self.recoveries[kind] += 1
                _log.warning("numerical failure at step %s (%s: %s); trying the next step", step, kind, exc)
                continue
            where = ", near the peak found" if local is not box else ""  # (peak_box)
            why = f"searching for feasibility: {used}, constraints on a log scale" if G is not None else ""
            why = why or f"model ({used}){where}"
            if failed:
                self.recovered_by[step] += 1
                why += f", after a numerical failure ({', '.join(failed)}): {step}"
            return candidates, why, local
        self.recovered_by[SPACE_FILLING] += 1
        return None, f"Sobol: numerical failures ({', '.join(failed)}) not recovered by {', '.join(STEPS)}", box

    def _model_subset(self, X: Tensor, Y: Tensor, C: Tensor) -> Tensor | None:
        """The ok observations the GP is conditioned on (:func:`~planners._large.model_subset`), None for all."""
        if len(X) <= self.max_model_points:
            return None
        return model_subset(X, Y, violations(self.vocs, C), self.max_model_points, self.seed + len(X))

    def _unmeasured_output(self) -> str | None:
        """A constraint output measured at fewer than :data:`~planners.options.MIN_OBSERVATIONS` ok observations (its
        reducer could not compute it at the others), or None: its GP needs that many to be fitted."""
        _, _, C = self.train_outcomes()
        counts = (~np.isnan(C)).sum(axis=0)
        short = [
            name for name, count in zip(self.constraint_names, counts.tolist(), strict=True) if count < MIN_OBSERVATIONS
        ]
        return short[0] if short else None

    def _searching_feasibility(self) -> bool:
        """Whether proposals search for feasibility (:mod:`planners._feasibility`): constraints, none of the ok
        observations feasible, and ``feasibility_search`` is not ``probability`` (the joint GP's own)."""
        return bool(self.vocs.constraints) and self.feasibility_search != "probability" and not self._any_feasible()

    def _feasibility_model(self, X: Tensor, G: Tensor, from_priors: bool = False) -> Model:
        """A GP on the log violations ``G: n x k`` (fitted afresh: the warm start and schedule are the main GP's)."""
        model = self._fit(X, G, G[:, :0], from_priors=from_priors)
        self.n_fits += 1
        return model

    def _local_box(self, model: Model, X: Tensor, Y: Tensor, C: Tensor, box: Tensor | None) -> Tensor | None:
        """``box`` narrowed to :func:`~planners._fitting.peak_box` (one objective, no constraints, no categories)."""
        if self.peak_box is None or Y.shape[1] != 1 or C.shape[1] or self.space.cat_dims:
            return box
        local = peak_box(model, X, Y, self.peak_box)
        if local is None:
            return box
        if box is not None:
            local = torch.stack([torch.maximum(local[0], box[0]), torch.minimum(local[1], box[1])])
            if bool((local[0] > local[1]).any()):
                return box
        self.n_peak_boxes += 1
        return local

    def predict(self, points: list[dict[str, Any]]) -> list[dict[str, dict[str, float]]]:
        """The model's prediction at each point (the :class:`~planners.Predicts` protocol).

        Uses the model of the last proposal when nothing was ingested since, otherwise fits one now (from the
        defaults, seeded; the planner's fitting schedule is left as it was).

        Returns:
            per point, ``{objective: {"mean", "std", "acquisition"}}``: the posterior mean and standard deviation
            in the objective's own units and sense, and the acquisition value of that one point alone (the points
            in flight, which include those under review, left out; the failed points pending; travel cost included).

        Raises:
            ValueError: fewer than two ok observations (no model yet), or a point's variable is not valid.
        """
        X, Y, C = self.train_tensors()
        if len(X) < MIN_OBSERVATIONS:
            raise PlannerError(f"no model yet: {len(X)} ok observation(s), the model needs {MIN_OBSERVATIONS}")
        if (unmeasured := self._unmeasured_output()) is not None:
            raise PlannerError(f"no model yet: '{unmeasured}' was measured at fewer than {MIN_OBSERVATIONS} points")
        U = torch.from_numpy(self.to_unit([self.point_x(p) for p in points]))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + self.n_known)
            if self._last_model is not None and self._last_model[0] == len(self._records):
                model = self._last_model[1]
            else:
                if (keep := self._model_subset(X, Y, C)) is not None:
                    X, Y, C = X[keep], Y[keep], C[keep]
                model = self._fit(X, Y, C)
            failed = torch.from_numpy(self.failed_unit())
            with expected_warnings_logged(), torch.no_grad():
                acq = self._penalized(self._acquisition(model, X, Y, C, failed, q=1))
                values = acq(U[:, None, :]).reshape(-1).tolist()
                posterior = model.posterior(U)
                mean, std = posterior.mean, posterior.variance.clamp_min(0.0).sqrt()  # type: ignore[attr-defined]
        out = []
        for i, value in enumerate(values):
            out.append(
                {
                    name: {"mean": sign * float(mean[i, j]), "std": float(std[i, j]), "acquisition": float(value)}
                    for j, (name, sign) in enumerate(zip(self.objective_names, self.signs, strict=True))
                }
            )
        return out

    def _acquisition(
        self, model: Model, X: Tensor, Y: Tensor, C: Tensor, X_pending: Tensor, q: int
    ) -> AcquisitionFunction:
        m = Y.shape[1]
        constraints = outcome_constraints(self.vocs, first_col=m)
        pending = X_pending if len(X_pending) else None
        if constraints and not self._any_feasible():
            return qLogProbabilityOfFeasibility(
                model, constraints=constraints, X_pending=pending, sampler=self._sampler()
            )
        if m > 1:
            ref_point = self.reference_point if self.reference_point is not None else infer_reference_point(Y)
            return hypervolume_improvement(
                model, X, Y, ref_point, self._sampler(), constraints=constraints, X_pending=pending
            )
        if constraints and q == 1 and pending is None:
            if self.acquisition == "logei" or (self.acquisition == "auto" and noiseless(model)):
                # the incumbent is known exactly: analytic, no joint posterior over the observed points; with one
                # restart at the best feasible observation it closes in on an optimum on a constraint's boundary
                # (see docs/benchmarks/constrained.md)
                return LogConstrainedExpectedImprovement(
                    model,
                    best_f=self._best_feasible(),
                    objective_index=0,
                    constraints=constraint_bounds(self.vocs, m),
                )
        if constraints:
            return qLogNoisyExpectedImprovement(
                model,
                sampler=self._sampler(),
                X_baseline=X,
                objective=GenericMCObjective(first_output),
                constraints=constraints,
                X_pending=pending,
                prune_baseline=True,
            )
        if pending is not None and q == 1 and self._believes(model, X, Y):
            return believed_ucb(model, pending, self.ucb_beta)
        if q == 1 and pending is None and self.acquisition == "logei":
            return LogExpectedImprovement(model, best_f=Y.max())
        if q == 1 and pending is None and self.acquisition == "logei-mean":
            with torch.no_grad():
                incumbent = model.posterior(X).mean.max()  # type: ignore[attr-defined]
            return LogExpectedImprovement(model, best_f=incumbent)
        return qLogNoisyExpectedImprovement(
            model, X_baseline=X, X_pending=pending, prune_baseline=True, sampler=self._sampler()
        )

    def _believes(self, model: Model, X: Tensor, Y: Tensor) -> bool:
        """Whether a proposal with points in flight believes the GP there (``pending``; :mod:`planners._pending`)."""
        if self.pending_rule == "auto":
            return choose_pending(model, X, Y, len(self._pending), self.n_initial) == "believe"
        return self.pending_rule == "believe" and stood_out(Y[:, 0])

    def _simple_acquisition(self, model: Model, Y: Tensor, G: Tensor | None) -> AcquisitionFunction:
        """An analytic acquisition function on ``model`` for one point, the recovery step ``simpler acquisition``:
        ``LogProbabilityOfFeasibility`` while nothing is feasible, ``LogConstrainedExpectedImprovement`` with
        constraints, else ``LogExpectedImprovement``. One objective only (:meth:`_recovering` skips the step for
        several)."""
        m = Y.shape[1]
        if G is not None:
            return LogProbabilityOfFeasibility(model, {i: (None, 0.0) for i in range(G.shape[-1])})
        if self.vocs.constraints:
            bounds = constraint_bounds(self.vocs, m)
            return LogConstrainedExpectedImprovement(model, self._best_feasible(), 0, constraints=bounds)
        return LogExpectedImprovement(model, best_f=Y.max())

    def _best_feasible(self) -> Tensor:
        """The best feasible observed objective value (:attr:`~planners.PlannerBase.best`), signed so that larger is
        better, as a float64 tensor; asked for only once an observation is feasible."""
        best = self.best
        assert best is not None, "no feasible observation yet"
        return torch.tensor(self.signs[0] * float(best[self.objective_names[0]]), dtype=torch.float64)

    def _sampler(self) -> SobolQMCNormalSampler:
        """Quasi-MC base samples for the MC acquisition functions (``mc_samples`` of them)."""
        return SobolQMCNormalSampler(sample_shape=torch.Size([self.mc_samples]))

    def _any_feasible(self) -> bool:
        return any(r.outcomes is not None and self.feasible(r.point) for r in self._records)

    def _optimize(
        self,
        model: Model,
        X: Tensor,
        Y: Tensor,
        C: Tensor,
        X_pending: Tensor,
        q: int,
        box: Tensor | None = None,
        step: str = "first",
        G: Tensor | None = None,
    ) -> tuple[Tensor, str]:
        """Choose ``q`` new points (``q x d``, unit cube, snapped) given the pending ones (``X_pending: p x d``);
        with the name of the acquisition function that chose them, for the operator.

        ``step`` is the recovery step (:mod:`planners._recovery`): after the first, no restart starts at the best
        feasible observation (where a noiseless GP's posterior variance vanishes and its gradient can be NaN);
        ``restarts`` doubles the restarts and raw samples, ``simpler acquisition`` uses
        :meth:`_simple_acquisition`. ``G`` (``n x k`` log violations) means the model is a feasibility search's
        (:meth:`_feasibility_model`).

        Raises:
            CandidateGenerationError: a candidate or an acquisition value is NaN (see :func:`check_finite`).
        """
        with expected_warnings_logged():
            if step == "simpler acquisition":
                chosen = self._simple_acquisition(model, Y, G)
            elif G is not None:
                pending = X_pending if len(X_pending) else None
                chosen = violation_acquisition(model, G, self.feasibility_search, self._sampler(), pending)
            else:
                chosen = self._acquisition(model, X, Y, C, X_pending, q)
            acq = self._penalized(chosen)
            bounds = box if box is not None else self._unit_bounds
            combos = categorical_combinations(self.space)
            free = len(self.space.cont_dims) + len(self.space.discrete_dims)
            more = 2 if step == "restarts" else 1
            effort: dict[str, Any] = {
                "num_restarts": more * self.num_restarts,
                "raw_samples": more * self.raw_samples,
                "options": {"maxiter": self.maxiter, "ftol": self.ftol, "factr": None},
                "retry_on_optimization_warning": False,
            }
            if Y.shape[1] > 1 and G is None:  # several objectives: start near the observed front too
                effort["options"].update(FRONT_STARTS)
            if combos is not None and free > 0:
                candidates, values = optimize_acqf_mixed(acq, bounds, q, fixed_features_list=combos, **effort)
            else:
                best = self.best if self.vocs.constraints and step == "first" else None
                if best is not None:
                    # one restart starts at the best feasible observation (see the class docstring)
                    start = torch.from_numpy(self.to_unit([self.point_x(best)]))[0]
                    effort["ic_generator"] = partial(starting_at, start)
                candidates, values = optimize_acqf(acq, bounds=bounds, q=q, **effort)
            check_finite(candidates, values)
        return self._snap(candidates.detach().reshape(q, self.dim), box), acquisition_name(chosen)

    def _distinct(
        self, candidates: Tensor, avoid: Tensor, exact: Tensor | None, box: Tensor | None, skip: int
    ) -> Tensor:
        """Replace each candidate that repeats another by a fresh Sobol point (inside ``box``) that does not.

        A repeat lies within :data:`~planners._base.SAME_POINT` of a point in ``avoid`` (pending and failed points)
        or of an earlier candidate, or exactly on a point of ``exact`` (the observations, given when rounding
        discrete and categorical variables can land on them). In a space with every value taken, a repeat is
        kept rather than fail.
        """
        out: list[Tensor] = []
        spare = self._design(max(32, 4 * len(candidates)), skip, box)
        used = 0
        for row in candidates:
            while used < len(spare) and self._repeats(row, torch.cat([avoid, *[r[None] for r in out]]), exact):
                row = spare[used]
                used += 1
            out.append(row)
        return torch.stack(out) if out else candidates

    @staticmethod
    def _repeats(row: Tensor, avoid: Tensor, exact: Tensor | None) -> bool:
        if len(avoid) and bool(near_any(row[None].numpy(), avoid.numpy())[0]):
            return True
        return exact is not None and len(exact) > 0 and bool((exact - row).abs().max(dim=-1).values.le(1e-9).any())
