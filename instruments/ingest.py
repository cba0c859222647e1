"""Turning a run's documents into an :class:`~closedloop.records.Observation`.

The documents are the truth: positions are what the instrument read back, not what was asked, and only the
``primary`` stream counts (a ``baseline`` or monitor stream is welcome and ignored). A run is a failed
observation, with a reason that names what is wrong, when:

- it never started, made more than one run, or its start document names another proposal;
- it stopped with ``abort`` or ``fail``, or with fewer ``primary`` events than its plan makes (``num`` for the
  bundled plans; the start document's ``num_points`` for a factory's plan, at least one);
- a variable's read-back, an output's field or the monitor is not in the stream;
- an objective cannot be measured: its reading is not a finite number, or its reducer cannot compute it.

A constraint output whose reducer cannot compute it from the data (a ``ValueError`` or an ``ArithmeticError``, such
as a width whose peak does not fall to half its height inside the scan), or that reads a value that is not a finite
number, does not
fail the run: the objective was measured and is kept, and the output is recorded as missing with its reason (and
the bound a :class:`~instruments.reducers.CensoredValue` gives) in the observation's ``missing``. A reducer that
faults otherwise (it names a field the stream lacks, or raises anything else) fails the run, as a fault of the
set-up rather than of the data.

Values: an output with a ``reducer`` gets what the reducer returns; any other reads its field in every event
and takes the mean. Objectives are divided by the plan's ``monitor`` event by event; constraints are not. A
variable's read-back is its mean over the events (the scanned variable's: the centre of the range measured).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from closedloop.errors import InstrumentError
from closedloop.records import MissingValue, Observation, ObservationStatus, Proposal
from closedloop.spec import SessionSpec, resolve_import_path
from instruments.reducers import CensoredValue, RunDocuments

Document = tuple[str, dict[str, Any]]


def observation_from_documents(
    spec: SessionSpec,
    proposal: Proposal,
    documents: Sequence[Document],
    error: str | None = None,
) -> Observation:
    """Build the observation of one proposal's run from its documents.

    Args:
        spec: says which field each variable's read-back and each output lives in, and the plan.
        proposal: the proposal the run carried out.
        documents: ``(name, document)`` pairs, in the order the RunEngine emitted them.
        error: what the executor saw go wrong, if anything (kept as the failure reason).

    Returns:
        An ``ok`` observation with read-backs and output values (and the constraint outputs that could not be
        computed, in ``missing``), or a ``failed`` one saying why.
    """
    run = RunDocuments(documents)
    start, stop = run.start, run.stop
    duration = float(stop["time"] - start["time"]) if start and stop else 0.0
    problems: list[str] = []
    readbacks = _readbacks(spec, run, problems)
    missing: dict[str, MissingValue] = {}
    values = _values(spec, run, documents, problems, missing) if run.events else {}
    problems += [f"objectives.{name}: {missing[name].describe()}" for name in spec.objectives if name in missing]
    reason = _run_failure(spec, proposal, run, error) or error or (problems[0] if problems else None)
    return Observation(
        proposal_id=proposal.id,
        status=ObservationStatus.FAILED if reason else ObservationStatus.OK,
        setpoints=dict(proposal.setpoints),
        readbacks=readbacks,
        values=values,
        missing=missing,
        run_uid=start["uid"] if start else None,
        error=reason,
        duration=duration,
    )


def expected_events(spec: SessionSpec, start: Mapping[str, Any]) -> int:
    """How many ``primary`` events the run's plan makes: the bundled plan's ``num``, or for a factory's plan
    the start document's ``num_points`` (at least one)."""
    expected = spec.plan.expected_events
    if expected is not None:
        return expected
    declared = start.get("num_points")
    return declared if isinstance(declared, int) and declared > 0 else 1


def _run_failure(spec: SessionSpec, proposal: Proposal, run: RunDocuments, error: str | None) -> str | None:
    start, stop = run.start, run.stop
    if start is None:
        return error or "the run never started (the plan emitted no start document)"
    if len(run.starts) > 1:
        return f"the plan made {len(run.starts)} runs; one proposal is one run"
    if start.get("proposal_id") != proposal.id:
        return (
            f"the run's start document names proposal {start.get('proposal_id')!r}, not {proposal.id!r} "
            "(a plan must pass md to its run)"
        )
    if stop is None:
        return error or "the run has no stop document"
    if stop.get("exit_status") != "success":
        return error or f"run {stop.get('exit_status')}: {stop.get('reason') or 'no reason given'}"
    wanted = expected_events(spec, start)
    if len(run.events) < wanted:
        return error or f"run ended with {len(run.events)} of {wanted} events in the {run.stream} stream"
    return None


def _readbacks(spec: SessionSpec, run: RunDocuments, problems: list[str]) -> dict[str, float | str]:
    movers = ((run.start or {}).get("closedloop") or {}).get("movers") or {}
    readbacks: dict[str, float | str] = {}
    if not run.events:
        return readbacks
    for name, variable in spec.variables.items():
        where = f"variables.{name}.readback"
        try:
            field = _readback_field(spec, run, name, movers.get(name))
            raw = run.values(field)
        except InstrumentError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if variable.categorical:
            readbacks[name] = str(raw[-1])
            continue
        try:
            numbers = np.asarray(raw, dtype=float)
            position = float(numbers[0]) if np.all(numbers == numbers[0]) else float(np.mean(numbers))
        except (TypeError, ValueError, IndexError):
            position = math.nan
        if math.isfinite(position):
            readbacks[name] = position
        else:
            problems.append(f"{where}: '{field}' read back {raw[-1]!r}, not a finite number")
    return readbacks


def _readback_field(spec: SessionSpec, run: RunDocuments, variable: str, mover: str | None) -> str:
    """The read-back field: the one the spec names, else the mover device's (by the name the run gave it)."""
    explicit = spec.variables[variable].readback
    if explicit is not None:
        return run.field(explicit)
    for name in dict.fromkeys(n for n in (mover, spec.device_of(variable)) if n):
        try:
            return run.field(name)
        except InstrumentError:
            continue
    return run.field(spec.device_of(variable))  # raises, naming the spec's device


def _values(
    spec: SessionSpec,
    run: RunDocuments,
    documents: Sequence[Document],
    problems: list[str],
    missing: dict[str, MissingValue],
) -> dict[str, float]:
    """Every output's value; what cannot be computed from the data goes in ``missing``, a fault in ``problems``."""
    monitor: str | None = None
    if spec.plan.monitor is not None:
        try:
            monitor = run.field(spec.plan.monitor)
        except InstrumentError as exc:
            problems.append(f"plan.monitor: {exc}")
            return {}
    values: dict[str, float] = {}
    for name in spec.outputs:
        is_objective = name in spec.objectives
        output = spec.objectives[name] if is_objective else spec.constraints[name]
        where = f"{'objectives' if is_objective else 'constraints'}.{name}"
        norm = monitor if is_objective else None
        try:
            if output.reducer is not None:
                value = _reduce(output.reducer, name, documents, spec.field_of(name), norm)
            else:
                value = _mean_of_field(run, spec.field_of(name), norm)
        except _Missing as exc:
            missing[name] = exc.missing
            continue
        except (InstrumentError, ValueError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        if math.isfinite(value):
            values[name] = value
        else:
            per = f" per monitor '{monitor}'" if norm else ""
            missing[name] = MissingValue(reason=f"'{spec.field_of(name)}'{per} is {value}, not a finite number")
    return values


class _Missing(Exception):
    """An output's reducer could not compute it from the data (raised by :func:`_reduce`)."""

    def __init__(self, missing: MissingValue) -> None:
        super().__init__(missing.reason)
        self.missing = missing


def _mean_of_field(run: RunDocuments, name: str, monitor: str | None) -> float:
    field = run.field(name)
    if run.is_external(field):
        raise InstrumentError(
            f"'{field}' is written to a file by its detector, not put in the events: "
            "give this output a reducer (for example instruments.reducers:mean, or frame_sum for images)"
        )
    data = run.column(field, monitor)
    if data.ndim != 1:
        raise InstrumentError(f"'{field}' holds arrays, not numbers: give this output a reducer")
    return float(np.mean(data))


def _reduce(path: str, output: str, documents: Sequence[Document], field: str, monitor: str | None) -> float:
    try:
        reducer = resolve_import_path(path)
    except Exception as exc:
        raise InstrumentError(f"reducer {path} failed: {type(exc).__name__}: {exc}") from None
    try:
        result = reducer(documents, field=field, monitor=monitor)
    except InstrumentError as exc:  # the set-up is wrong (a field the stream lacks): the run fails
        raise InstrumentError(f"reducer {path} failed: {type(exc).__name__}: {exc}") from None
    except (ValueError, ArithmeticError) as exc:  # the data do not give the value: the output is missing
        bounds = {"at_least": exc.at_least, "at_most": exc.at_most} if isinstance(exc, CensoredValue) else {}
        kind = "" if isinstance(exc, ValueError) else f"{type(exc).__name__}: "
        reason = f"reducer {path} could not compute it: {kind}{exc}"
        raise _Missing(MissingValue(reason=reason, **bounds)) from None
    except Exception as exc:  # a reducer is user code: any other fault is this output's failure, with its name
        raise InstrumentError(f"reducer {path} failed: {type(exc).__name__}: {exc}") from None
    if isinstance(result, Mapping):
        if output not in result:
            raise InstrumentError(f"reducer {path} returned no value for '{output}' (it gave {', '.join(result)})")
        result = result[output]
    try:
        return float(result)
    except (TypeError, ValueError):
        raise InstrumentError(f"reducer {path} returned {result!r}, not a number") from None
