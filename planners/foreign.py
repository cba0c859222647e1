"""A generator that is not ours, driven with points in flight it cannot see.

gest-api has no pending points: a generator knows only the results it was given. Asked again while its last point
still runs (pipelining, several instruments), Xopt's Bayesian generators propose that same point again, and its
sequential ones (Nelder-Mead, RCDS, extremum seeking) refuse the result when it comes back. :class:`Foreign` wraps
every generator not of this package (:func:`planners.load_planner` does it) and keeps the account for it:

- A generator that makes one point at a time (Xopt's ``supports_batch_generation = False``; any generator may
  declare it) has at most one of its points out: :attr:`Foreign.room` is 0 until that point's result is in, and the
  agent waits for a run to end before asking (:class:`~planners._protocols.LimitsInFlight`). A result it did not
  make reaching it after it started (an operator's point) resets it first when it has ``reset()`` (Xopt's way to
  give a sequential generator other data): it starts again from the data, as it does after a resume.
- Any other is asked for the ``n`` points wanted. When one of them repeats a point of its own still out (within
  ``SAME_POINT``), it is asked again for ``k + n`` at once, ``k`` its points out: the batch it would send now,
  which its batch acquisition keeps apart. The ``k`` of them nearest the points out (a minimum total distance
  matching in the unit cube) stand for those, and the other ``n`` go. One that cannot make that many
  (``ValueError``) keeps its first answer. Asking for the whole batch every time was measured and not kept: the
  point left over is the batch's most exploratory one, and Xopt's EI with four instruments ended far worse
  (``docs/explanation/planners.md``).
- Its first ``suggest`` failing before it has any data says to set ``planner.initial_design``.
- A numerical failure once it has data (:func:`~planners._recovery.failure_kind`: a NaN gradient, a covariance not
  positive definite, a fit that did not converge, as Xopt's BoTorch models raise them) costs no experiment: it is
  counted in :attr:`Foreign.recoveries`, the generator is asked once more with torch's RNG seeded anew, and if that
  fails too the points come from a scrambled Sobol sequence of the wrapper's own, each saying so in ``why``. Any other
  exception is raised as it was.
- With a ``seed``, torch's RNG (when torch is loaded) is seeded from it and the results taken around every call of
  the generator, and put back afterwards: a generator that takes no seed (Xopt's) proposes the same points on the
  same data, whatever ran in the process before.

Every point carries this wrapper's own integer ``_id`` (the generator's own, if it gives one, is mapped back when the
point's result is ingested).
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from gest_api.vocs import VOCS

from closedloop.errors import PlannerError
from planners._points import near_any
from planners._recovery import failure_kind
from planners._space import Space, build_variables
from planners.sobol import sobol_points

_log = logging.getLogger(__name__)

ID_KEY = "_id"
INITIAL_DESIGN_HINT = "set planner.initial_design: N in the session file to have closedloop propose the first N points"


def makes_one_at_a_time(planner: Any) -> bool:
    """Whether ``planner`` declares it cannot make a batch (Xopt's ``supports_batch_generation = False``)."""
    return getattr(planner, "supports_batch_generation", True) is False


#: How far apart the torch seeds of a call and its retry are.
RESEED = 7919


@contextmanager
def seeded_torch(seed: int | None) -> Iterator[None]:
    """torch's RNG (only when torch is loaded, and ``seed`` given) seeded with ``seed`` inside the block and put back
    afterwards; otherwise nothing."""
    torch = sys.modules.get("torch")
    if seed is None or torch is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def said_why(planner: Any, own_id: Any) -> str | None:
    """What a wrapped generator says of its point with its own ``_id`` (a ``why`` method:
    :class:`~planners.Explains`); None when it has no ``why``, the point no ``_id``, or it says nothing."""
    ask = getattr(planner, "why", None)
    reason = ask(own_id) if callable(ask) and own_id is not None else None
    return str(reason) if reason else None


class Foreign:
    """A generator not of this package, with its points in flight accounted for (see the module's text).

    Every attribute but the ones below is the wrapped generator's (``isinstance`` checks against the protocols in
    :mod:`planners._protocols` see its methods).

    Args:
        planner: the generator, built for ``vocs``.
        name: its name or import path, for messages.
        vocs: the problem, to compare points in the unit cube (a VOCS this package cannot map leaves out the
            matching: such a generator is asked for ``n`` points, and its numerical failures are raised).
        seed: seeds torch's RNG around the generator's calls and the Sobol points that stand in for a failed call
            (see the module's text); None: neither is seeded (the Sobol points from seed 0).
    """

    returns_id = True

    def __init__(self, planner: Any, *, name: str, vocs: VOCS, seed: int | None = None) -> None:
        self.planner = planner
        self.name = name
        self.seed = seed
        self.constants = {key: c.value for key, c in vocs.constants.items()}
        #: Numerical failures of the generator caught, by kind (see :mod:`planners._recovery`).
        self.recoveries: Counter[str] = Counter()
        #: How they were recovered from: ``retry`` (asked again) or ``space-filling`` (Sobol points instead).
        self.recovered_by: Counter[str] = Counter()
        self._reasons: dict[int, str] = {}  # our id -> why, for the points that stood in for a failed call
        self._stand_ins = 0  # Sobol points given so far
        self._results = 0  # results ingested, for the seed of each call
        self.one_at_a_time = makes_one_at_a_time(planner)
        try:
            self._space: Space | None = Space(build_variables(vocs))
        except PlannerError:
            self._space = None
        self._out: dict[int, tuple[Any, np.ndarray | None]] = {}  # our id -> (its own _id, unit point)
        self._next_id = 0
        self._has_data = False
        self._started = False  # a one-at-a-time generator made a point since it last took other data

    @property
    def room(self) -> int | None:
        """How many more points it can make now: None for no limit; 0 while a one-at-a-time generator's point is
        out."""
        if self.one_at_a_time:
            return 0 if self._out else 1
        return None

    @property
    def diagnostics(self) -> dict[str, Any]:
        """The generator's numerical failures caught, by kind (``recoveries``), and how they were recovered from
        (``recovered_by``)."""
        return {"recoveries": dict(self.recoveries), "recovered_by": dict(self.recovered_by)}

    @property
    def out(self) -> int:
        """Its points suggested and not yet ingested."""
        return len(self._out)

    def suggest(self, num_points: int | None = None) -> list[dict[str, Any]]:
        """The generator's points; a repeat of one of its points out is replaced (see the module's text).

        Raises:
            PlannerError: a one-at-a-time generator is asked while its point is out, or the generator failed
                before any data (the hint says to set ``planner.initial_design``).
        """
        if self.one_at_a_time and self._out:
            raise PlannerError(f"planner '{self.name}' makes one point at a time: the last one's result is not in")
        points, why = self._ask(num_points)
        if why is not None:  # Sobol points stood in for the generator's
            self._started = self._started or bool(points)
            tagged = [self._tag(dict(point)) for point in points]
            self._reasons.update((point[ID_KEY], why) for point in tagged)
            return tagged
        out = self._units_out()
        if len(out) and not self.one_at_a_time and num_points is not None:
            units = [self._unit(point) for point in points]
            if any(u is not None and near_any(u[None, :], out)[0] for u in units):
                points = self._complete(num_points) or points
        self._started = self._started or bool(points)
        return [self._tag(dict(point)) for point in points]

    def _call(self, ask: Callable[[], Any], attempt: int = 0) -> Any:
        """``ask()`` with torch's RNG seeded from the seed, the results taken and the attempt."""
        seed = None if self.seed is None else self.seed + self._results + RESEED * attempt
        with seeded_torch(seed):
            return ask()

    def _ask(self, n: int | None) -> tuple[list[dict[str, Any]], str | None]:
        """Its points, and None; or, when it failed numerically twice, Sobol points and why (see the module's text)."""
        failed: list[str] = []
        for attempt in range(2):
            try:
                points = list(self._call(lambda: self.planner.suggest(n), attempt))
            except PlannerError:
                raise
            except Exception as exc:
                if not self._has_data:
                    reason = (str(exc).splitlines() or [""])[0]
                    raise PlannerError(
                        f"planner '{self.name}' cannot propose without data: {type(exc).__name__}: {reason}",
                        hint=INITIAL_DESIGN_HINT,
                    ) from exc
                kind = failure_kind(exc)
                if kind is None or self._space is None:
                    raise
                failed.append(kind)
                self.recoveries[kind] += 1
                _log.warning("planner '%s' failed numerically (%s: %s)", self.name, kind, exc)
                continue
            if failed:
                self.recovered_by["retry"] += 1
            return points, None
        self.recovered_by["space-filling"] += 1
        return self._sobol(1 if n is None else n), f"Sobol: {self.name} failed numerically ({', '.join(failed)})"

    def _sobol(self, n: int) -> list[dict[str, Any]]:
        """The next ``n`` points of the wrapper's own scrambled Sobol sequence, with the constants."""
        assert self._space is not None
        X = self._space.from_unit(sobol_points(self._space.d, n, seed=self.seed or 0, skip=self._stand_ins)).tolist()
        self._stand_ins += n
        space = self._space
        return [{**{v.name: space.member(j, x[j]) for j, v in enumerate(space.variables)}, **self.constants} for x in X]

    def _unit(self, point: dict[str, Any]) -> np.ndarray | None:
        """The point in the unit cube, or None when a variable is missing or not one of its values."""
        space = self._space
        if space is None:
            return None
        x = [space.parse(j, point.get(v.name)) for j, v in enumerate(space.variables)]
        if any(value is None for value in x):
            return None
        return space.to_unit([x])[0]

    def _units_out(self) -> np.ndarray:
        """Its points out that this package can place, in the unit cube: ``k x d``."""
        units = [u for _, u in self._out.values() if u is not None]
        return np.array(units) if units else np.empty((0, 0))

    def _complete(self, n: int) -> list[dict[str, Any]] | None:
        """``n`` points of the batch it would send now, its points out included: asked for ``k + n``, each point out
        matched to one of them (the total distance least) and the others returned; None when it cannot make that
        many, or that many that repeat no point out."""
        from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

        asked = n + len(self._out)
        try:
            batch = list(self._call(lambda: self.planner.suggest(asked)))
        except Exception:  # it cannot make that many (ValueError, as gest-api says) or failed
            return None
        units = [self._unit(point) for point in batch]
        candidates = [i for i, u in enumerate(units) if u is not None]
        out = self._units_out()
        if len(batch) != asked or len(candidates) < len(out):
            return None
        U = np.array([units[i] for i in candidates])
        distance = np.linalg.norm(out[:, None, :] - U[None], axis=-1)
        _, columns = linear_sum_assignment(distance)
        taken = {candidates[c] for c in columns}
        # a batch may hold two points at one point out (a corner of the box, say): none that repeats one goes, and
        # the batch's points furthest from those out fill in
        repeats = near_any(U, out)
        apart = [c for c in range(len(candidates)) if not repeats[c]]
        apart.sort(key=lambda c: (candidates[c] in taken, -distance[:, c].min()))
        apart = [candidates[c] for c in apart]
        return [batch[i] for i in apart[:n]] if len(apart) >= n else None

    def _tag(self, point: dict[str, Any]) -> dict[str, Any]:
        own = point.pop(ID_KEY, None)
        self._out[self._next_id] = (own, self._unit(point))
        point[ID_KEY] = self._next_id
        self._next_id += 1
        return point

    def ingest(self, results: list[dict[str, Any]]) -> None:
        """Pass the results on, each with the generator's own ``_id`` (if it gave one) for a point it made.

        Raises:
            PlannerError: a result's ``_id`` is not one of its points out.
        """
        forward, theirs = [], True
        for result in results:
            result = dict(result)
            if ID_KEY in result:
                point_id = result.pop(ID_KEY)
                entry = self._out.pop(point_id, None) if isinstance(point_id, int) else None
                self._reasons.pop(point_id, None)
                if entry is None:
                    raise PlannerError(f"planner '{self.name}': no point out with _id {point_id!r}")
                if entry[0] is not None:
                    result[ID_KEY] = entry[0]
            else:
                theirs = False
            forward.append(result)
        reset = getattr(self.planner, "reset", None)
        if self.one_at_a_time and self._started and not theirs and callable(reset):
            reset()  # a sequential generator takes other data only from the start
            self._started = False
        self.planner.ingest(forward)
        self._has_data = self._has_data or bool(forward)
        self._results += len(forward)

    def why(self, point_id: int) -> str | None:
        """Why the generator made the point out with this ``_id``: what it says (a ``why(its own _id)`` method:
        :class:`~planners.Explains`), else its class's name; None for no such point out."""
        entry = self._out.get(point_id)
        if entry is None:
            return None
        if point_id in self._reasons:
            return self._reasons[point_id]
        return said_why(self.planner, entry[0]) or type(self.planner).__name__

    def __getattr__(self, name: str) -> Any:
        return getattr(self.planner, name)
