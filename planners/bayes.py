"""Bayesian optimization with BoTorch (:class:`BoTorchPlanner`): GPs on the observations and log-improvement
acquisition functions, the planner composed of its GP fitting (:mod:`planners.gp`), its acquisition optimizer
(:mod:`planners._optimizer`) and its movement (:mod:`planners._travel`)."""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import nullcontext
from typing import Any, ClassVar

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.models.model import Model
from gest_api.vocs import VOCS
from torch import Tensor

from closedloop.errors import PlannerError
from planners._acquisition import parse_reference_point
from planners._base import PlannerBase
from planners._choice import choose_acquisition, sampler, simple_acquisition
from planners._design import SobolDesign
from planners._feasibility import log_violations, model_constraints, violation_acquisition
from planners._large import model_subset, violations
from planners._optimizer import AcquisitionOptimizer, acquisition_name
from planners._points import STALLED, stalls
from planners._recovery import SPACE_FILLING, STEPS, failure_kind, more_jitter
from planners._travel import Movement
from planners.gp.expected_warnings import expected_warnings_logged
from planners.gp.fitting import GPFitting
from planners.gp.reading import noise_share, noiseless, peak_box, stands_out
from planners.options import MIN_OBSERVATIONS, BoTorchOptions

_log = logging.getLogger(__name__)

#: How far apart the torch seeds of successive recovery steps are.
RESEED = 7919


class BoTorchPlanner(PlannerBase):
    """Bayesian optimization: a Sobol start, then GPs and a log-improvement acquisition function.

    The first ``n_initial`` points come from a seeded scrambled Sobol design, and so do those proposed while the
    design's results are not in (:attr:`results_for_model`). Then one batched GP over every outcome (objectives,
    then constraint outputs; float64, inputs in the unit cube, ``Standardize``; ``MixedSingleTaskGP`` with
    categorical variables; one GP per outcome when an outcome is missing at some points) is fitted to the ok
    observations by :attr:`fitting` (:class:`~planners.gp.fitting.GPFitting`: afresh while data are few, then on a
    geometric schedule) and an acquisition function chosen by :meth:`_acquisition` is maximized by
    :attr:`optimizer` (:class:`~planners._optimizer.AcquisitionOptimizer`). Failed points are never fit.

    Which acquisition function, when: :mod:`planners._choice` (``docs/explanation/planners.md`` says why).

    Large data: above ``max_model_points`` ok observations the GP is conditioned on that many of them and qLogNEI's
    (qLogNEHVI's) baseline is that subset (:mod:`planners._large`); at or below it nothing changes.

    Noise (``noise_prior``, ``noise_fill``): ``adaptive`` fits with a low prior on the noise and, when a
    lengthscale sits at its bound (:func:`~planners.gp.reading.interpolates_noise`), fits again with none;
    ``noise_fill`` then proposes Sobol points while that fit puts more than the given share of the variance in
    noise and no reading stands out (:func:`~planners.gp.reading.stands_out`). Once a reading stood out and the GP
    fits a short lengthscale, the next point is sought in :func:`~planners.gp.reading.peak_box` (``peak_box``).

    Failed points stay pending for good (``X_pending``), and no proposal lies within
    :data:`~planners._points.SAME_POINT` of one, of a pending point or of another point of its batch (a repeat is
    replaced by a fresh Sobol point, :func:`~planners._points.distinct`); nor, with one objective on noiseless
    data, a third in a row within it of an observation (a stall, :func:`~planners._points.stalls`). Discrete
    variables are optimized relaxed and rounded; categorical ones as :class:`~planners._optimizer.AcquisitionOptimizer`
    says.

    Movement (``travel_cost``, ``max_travel``): :attr:`movement` (:class:`~planners._travel.Movement`) knows the
    current position, penalizes the acquisition by the travel from it and keeps every proposal within reach.

    Numerical failures (a NaN gradient, a covariance not positive definite, a fit that does not converge, a NaN
    acquisition value) never cost a proposal: they are recovered from in the order of :mod:`planners._recovery`,
    counted by kind in :attr:`recoveries` (and :attr:`diagnostics`), and said in ``why``.

    Reproducible: the same seed and the same ingested data give the same points (the torch RNG is forked and
    seeded from ``seed`` and the number of points known for every call, a scheduled fit from ``seed`` and
    its size, and global state is left untouched).

    Args:
        vocs: the problem (see :class:`~planners.PlannerBase`); constraints, several objectives, discrete and
            categorical variables are all supported.
        seed: seed for the design, the fit and the acquisition optimizer; ``None`` draws one.
        **options: see :class:`~planners.options.BoTorchOptions` (``closedloop planners botorch`` lists them); the
            planner reads them from :attr:`options`, never copies them.

    Raises:
        PlannerError: the VOCS is unsupported or an option is out of range (``planner.options.<name>: ...``).
    """

    supports_constraints = True
    supports_multi_objective = True
    supports_discrete = True
    options_model: ClassVar[type[BoTorchOptions]] = BoTorchOptions
    options: BoTorchOptions
    #: The class of :attr:`fitting` (a subclass changes how the GPs are built or fitted).
    fitting_class: ClassVar[type[GPFitting]] = GPFitting

    def __init__(self, vocs: VOCS, *, seed: int | None = None, **options: Any) -> None:
        super().__init__(vocs, seed=seed, **options)
        #: The Sobol points: the design, and the replacements of repeats.
        self.design = SobolDesign(self.space, self.seed)
        #: The acquisition optimizer (restarts, raw samples, iterations, tolerance).
        self.optimizer = AcquisitionOptimizer(self.options, self.space, len(self.objective_names))
        #: The GP fitting: schedule, warm starts, noise prior, and its counts of fits and reuses.
        self.fitting = self.fitting_class(self.options, self.space, self.seed)
        #: ``reference_point`` as a tensor of signed objective values, or None.
        self.reference_point = parse_reference_point(self.options.reference_point, self.objective_names, self.signs)
        #: Where the instrument is, and what ``max_travel`` and ``travel_cost`` make of it.
        self.movement = Movement(self.space, self.options.travel_cost, self.options.max_travel)
        #: Proposals sought inside :func:`~planners.gp.reading.peak_box` rather than the whole space.
        self.n_peak_boxes = 0
        #: Model proposals that stalled on one point, a Sobol point sent instead (:func:`~planners._points.stalls`).
        self.n_stalls = 0
        #: Numerical failures of fitting and acquisition caught while proposing, by kind (:mod:`planners._recovery`).
        self.recoveries: Counter[str] = Counter()
        #: The step that recovered from them (:data:`~planners._recovery.STEPS`, or ``space-filling``), by step.
        self.recovered_by: Counter[str] = Counter()
        self._unit_bounds = torch.stack([torch.zeros(self.dim), torch.ones(self.dim)]).to(torch.float64)
        #: (records ingested then, the model) of the last model-based proposal, for :meth:`predict`
        self._last_model: tuple[int, Model] | None = None

    # -- movement (the :class:`~planners.KnowsPosition` protocol) -------------------------------------------

    def set_position(self, position: dict[str, float]) -> None:
        """Tell the planner where the instrument is: a value for every non-categorical variable.

        Other keys (constants, outputs, ``_id``) are ignored. Holds until the next ingest.

        Raises:
            ValueError: a non-categorical variable is missing or not a finite number.
        """
        self.movement.set_position(position)

    @property
    def position(self) -> dict[str, float] | None:
        """The current position (non-categorical variables), or None when not known."""
        return self.movement.position

    def ingest(self, results: list[dict[str, Any]]) -> None:
        """:meth:`PlannerBase.ingest <planners.PlannerBase.ingest>`; the instrument is then where it last measured."""
        known = len(self._records)
        super().ingest(results)
        if len(self._records) > known:  # the instrument is where it last measured
            self.movement.measured_at(self._records[-1].x)

    def _proposal_box(self) -> np.ndarray | None:
        return self.movement.proposal_box()

    # -- proposing -----------------------------------------------------------------------------------------

    @property
    def diagnostics(self) -> dict[str, Any]:
        """The planner's counters: fits, reuses, peak boxes, numerical failures by kind (``recoveries``) and by the
        step that recovered from them (``recovered_by``)."""
        return {
            "n_fits": self.fitting.n_fits,
            "n_reuses": self.fitting.n_reuses,
            "n_peak_boxes": self.n_peak_boxes,
            "n_stalls": self.n_stalls,
            "recoveries": dict(self.recoveries),
            "recovered_by": dict(self.recovered_by),
        }

    @property
    def results_for_model(self) -> int:
        """The ok observations the GP waits for: the design's results, all but one (a pipelined instrument runs
        one design point while the next proposal is made), and at least :data:`~planners.options.MIN_OBSERVATIONS`;
        Sobol points until then (why: ``docs/explanation/planners.md``)."""
        return max(MIN_OBSERVATIONS, self.options.n_initial - 1)

    def train_tensors(self) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`~planners.PlannerBase.train_outcomes` as float64 tensors: ``X: n x d``, ``Y: n x m``, ``C: n x k``."""
        X, Y, C = self.train_outcomes()
        return torch.from_numpy(X), torch.from_numpy(Y), torch.from_numpy(C)

    def _propose(self, n: int) -> np.ndarray:
        return self._points(n).detach().numpy()

    def _points(self, n: int) -> Tensor:
        """``n`` new points in the unit cube, ``n x d`` (see :meth:`PlannerBase._propose`)."""
        known = self.n_known
        box = self.movement.unit_box()
        n_design = min(n, max(0, self.options.n_initial - known))
        unmeasured = self.unmeasured_output()
        if self.n_observed < self.results_for_model or unmeasured is not None:
            n_design = n
        # failed points (rejected, aborted, faulty) stay pending for good: the acquisition steers away from them
        avoid = torch.from_numpy(np.concatenate([self.pending_unit(), self.failed_unit()]))
        design = self.design.distinct(self.design.points(n_design, known, box), avoid, None, box, skip=known + n)
        waiting = "design: the model waits for the design's results"
        if unmeasured is not None and self.n_observed >= self.results_for_model:
            waiting = f"design: the model waits for values of '{unmeasured}' (missing at the points so far)"
        reasons = ["initial design" if known + i < self.options.n_initial else waiting for i in range(n_design)]
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
            return self.design.distinct(self.design.points(n, known, box), avoid, None, box, skip=known + n)
        fitted = self._last_model[1] if self._last_model is not None and Y.shape[1] == 1 else None
        if n - n_design == 1 and fitted is not None and noiseless(fitted) and stalls(candidates[0].numpy(), X.numpy()):
            self.n_stalls += 1
            why, candidates, local = STALLED, self.design.points(1, known, box), box
        self._explain(reasons + [why] * (n - n_design))
        exact = X if (self.space.cat_dims or self.space.discrete_dims) else None
        candidates = self.design.distinct(candidates, X_pending, exact, local, skip=known + n)
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
        keep = self._model_subset(X, Y, C)  # large data: the model and the acquisition see a subset (planners._large)
        G = log_violations(self.vocs, C if keep is None else C[keep]) if search else None
        full = (X, Y, model_constraints(self.vocs, C, self.options.n_initial))
        X, Y, C = full if keep is None else (full[0][keep], full[1][keep], full[2][keep])
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
                        model = self.fitting.model_for(*full, keep=keep)
                        self._last_model = (len(self._records), model)
                        fill = self.options.noise_fill
                        if fill is not None and noise_share(model) > fill and not stands_out(full[1][:, 0]):
                            # no structure yet, only noise, and no reading stands out: keep filling the space
                            return None, "Sobol: only noise so far", box
                    elif model is None or step in ("refit", "jitter"):
                        fit = self.fitting.fit
                        model = self._feasibility_model(X, G, True) if G is not None else fit(X, Y, C, None, True)
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
        limit = self.options.max_model_points
        if len(X) <= limit:
            return None
        return model_subset(X, Y, violations(self.vocs, C), limit, self.seed + len(X))

    def _searching_feasibility(self) -> bool:
        """Whether proposals search for feasibility (:mod:`planners._feasibility`): constraints, none of the ok
        observations feasible, and ``feasibility_search`` is not ``probability`` (the joint GP's own)."""
        return (
            bool(self.vocs.constraints) and self.options.feasibility_search != "probability" and not self.any_feasible()
        )

    def _feasibility_model(self, X: Tensor, G: Tensor, from_priors: bool = False) -> Model:
        """A GP on the log violations ``G: n x k`` (fitted afresh: the warm start and schedule are the main GP's)."""
        model = self.fitting.fit(X, G, G[:, :0], from_priors=from_priors)
        self.fitting.n_fits += 1
        return model

    def _local_box(self, model: Model, X: Tensor, Y: Tensor, C: Tensor, box: Tensor | None) -> Tensor | None:
        """``box`` narrowed to :func:`~planners.gp.reading.peak_box` (one objective, no constraints, no categories)."""
        if self.options.peak_box is None or Y.shape[1] != 1 or C.shape[1] or self.space.cat_dims:
            return box
        local = peak_box(model, X, Y, self.options.peak_box)
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
        if (unmeasured := self.unmeasured_output()) is not None:
            raise PlannerError(f"no model yet: '{unmeasured}' was measured at fewer than {MIN_OBSERVATIONS} points")
        U = torch.from_numpy(self.to_unit([self.point_x(p) for p in points]))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + self.n_known)
            if self._last_model is not None and self._last_model[0] == len(self._records):
                model = self._last_model[1]
            else:
                keep, C = self._model_subset(X, Y, C), model_constraints(self.vocs, C, self.options.n_initial)
                if keep is not None:
                    X, Y, C = X[keep], Y[keep], C[keep]
                model = self.fitting.fit(X, Y, C)
            failed = torch.from_numpy(self.failed_unit())
            with expected_warnings_logged(), torch.no_grad():
                acq = self.movement.penalized(self._acquisition(model, X, Y, C, failed, q=1))
                values = acq(U[:, None, :]).reshape(-1).tolist()
                posterior = model.posterior(U)
                mean, std = posterior.mean, posterior.variance.clamp_min(0.0).sqrt()  # type: ignore[attr-defined]
        outputs = list(enumerate(zip(self.objective_names, self.signs, strict=True)))
        return [
            {
                name: {"mean": sign * float(mean[i, j]), "std": float(std[i, j]), "acquisition": v}
                for j, (name, sign) in outputs
            }
            for i, v in enumerate(values)
        ]

    def _acquisition(
        self, model: Model, X: Tensor, Y: Tensor, C: Tensor, X_pending: Tensor, q: int
    ) -> AcquisitionFunction:
        """The acquisition function for ``q`` new points (:func:`~planners._choice.choose_acquisition`)."""
        return choose_acquisition(self, model, X, Y, C, X_pending, q)

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
        :func:`~planners._choice.simple_acquisition`. ``G`` (``n x k`` log violations) means the model is a
        feasibility search's (:meth:`_feasibility_model`).

        Raises:
            CandidateGenerationError: a candidate or an acquisition value is NaN (see :func:`check_finite`).
        """
        with expected_warnings_logged():
            if step == "simpler acquisition":
                chosen = simple_acquisition(self, model, Y, G)
            elif G is not None:
                pending = X_pending if len(X_pending) else None
                chosen = violation_acquisition(
                    model, G, self.options.feasibility_search, sampler(self.options), pending
                )
            else:
                chosen = self._acquisition(model, X, Y, C, X_pending, q)
            acq = self.movement.penalized(chosen)
            bounds = box if box is not None else self._unit_bounds
            best = self.best if self.vocs.constraints and step == "first" else None
            # one restart starts at the best feasible observation (see planners._optimizer)
            start = torch.from_numpy(self.to_unit([self.point_x(best)]))[0] if best is not None else None
            more = 2 if step == "restarts" else 1
            # several objectives (not a feasibility search): restarts start near the observed Pareto front too
            front = Y.shape[1] > 1 and G is None
            candidates = self.optimizer.optimize(acq, bounds, q, start=start, more=more, front=front)
        return self.design.snap(candidates.detach().reshape(q, self.dim), box), acquisition_name(chosen)
