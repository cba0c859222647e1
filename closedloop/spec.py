"""The session spec: what a session file says, validated at load time.

A session file (YAML) describes one autonomous session: the variables and the devices that move them, the
objectives and the event fields they read, the budget, the planner, the instrument and the review policy.
:meth:`SessionSpec.vocs` maps the optimization part onto a gest-api ``VOCS``, which is what planners see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gest_api.vocs import VOCS
from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator, model_validator

from closedloop.arrays import ArraysSpec
from closedloop.errors import SpecError
from closedloop.files import SESSION_FILE_LIMIT, load_yaml_file
from closedloop.instrument import InstrumentSpec, PublishSpec, RunMetadata, SuspenderSpec
from closedloop.plan import PlanSpec
from closedloop.plugins import PLANNER_GROUP as PLANNER_GROUP  # re-exported: others import it from here
from closedloop.plugins import registered_planners as registered_planners  # re-exported, as PLANNER_GROUP
from closedloop.plugins import resolve_import_path as resolve_import_path
from closedloop.problem import (
    ConstantSpec,
    ConstraintSpec,
    FieldError,
    ObjectiveSpec,
    VariableSpec,
    input_name_problem,
    name_problem,
    path_segment,
)
from closedloop.sections import STRICT, BudgetSpec, FailureSpec, PlannerSpec, ReviewSpec
from closedloop.sections import ReviewPolicy as ReviewPolicy  # re-exported: the sections were defined here
from closedloop.sections import RiskySpec as RiskySpec
from closedloop.tiled import TiledSpec
from closedloop.validation import describe_error, non_finite_path

#: The largest seed accepted (NumPy's and torch's seeds are 32-bit unsigned).
MAX_SEED = 2**32 - 1


class SessionSpec(BaseModel):
    """A whole session file.

    Attributes:
        name: a label for people.
        variables: variable name -> :class:`VariableSpec`.
        objectives: objective name -> :class:`ObjectiveSpec` (two or more: multi-objective).
        constraints: output name -> :class:`ConstraintSpec` (outcome constraints).
        constants: name -> :class:`ConstantSpec` (settings held fixed).
        budget: when to end.
        planner: which planner proposes points.
        instrument: where the devices come from.
        instruments: several instruments instead of ``instrument``, each with its own devices (or queueserver) and
            RunEngine; the loop keeps all of them busy from one model. Give ``instrument`` or ``instruments``.
        pipeline: propose the next experiment while the current one runs, so that it starts as soon as the
            instrument is free (``false``: propose, run, ingest, strictly in turn).
        review: when to stop for a human.
        failures: what to do when runs keep failing.
        folder: the session folder: an absolute path as it is (``~`` is the user's home), a relative one from the
            session file's own folder (``../data/run1`` is then beside that folder); ``closedloop run --dir``
            overrides it (``--dir`` is relative to the current directory). See :func:`folder_path`.
        seed: seed for the planner and the simulator, for reproducible sessions: an integer from 0 to
            ``2**32 - 1``.
        plan: the plan that carries out each proposal (a bundled one, or a factory of your own).
        metadata: keys merged into every run's start document (not ``proposal_id``, ``session_id``, ``iteration``).
        suspenders: signals that hold a run while they are below a floor (a ring current). Refused with a
            queueserver instrument: install them in the manager's startup profile.
        publish: where every run's documents are published as JSON (a bluesky 0MQ proxy). Refused with a
            queueserver instrument: its proxy (``documents_address``) already publishes them.
        tiled: the Tiled server every run's documents are written to (needs the ``closedloop[tiled]`` extra).
            Refused with a queueserver instrument: subscribe a Tiled writer in the manager's startup profile.
        arrays: which array readings (images) go to HDF5 files in the session folder instead of into the documents.
        store: a ``postgresql://`` URL: keep the store and LangGraph's checkpoints in that PostgreSQL database (needs
            the ``closedloop[postgres]`` extra), so operators on other hosts share the session; default SQLite in the
            session folder. ``closedloop run --store`` overrides it.
        prior: warm start: an earlier session's bundle (``closedloop export``) or folder, whose observations the
            planner is given first, marked as prior data; relative to the session file's folder.
            Variables must match by name and the objectives and constraints be the same; prior points outside the
            new bounds are dropped (and counted). ``closedloop run --from`` overrides it.

    Every name (variables, constants, objectives, constraints) must be usable as a key (see
    :func:`~closedloop.problem.name_problem`), each device is moved by one input only (one variable, or one
    constant with a ``device``), each variable reads back from its own field, and no number anywhere in the
    spec, the planner's and the instrument's options included, may be NaN or infinite.
    """

    model_config = STRICT

    name: str = "session"
    variables: dict[str, VariableSpec]
    objectives: dict[str, ObjectiveSpec]
    constraints: dict[str, ConstraintSpec] = Field(default_factory=dict)
    constants: dict[str, ConstantSpec] = Field(default_factory=dict)
    budget: BudgetSpec
    planner: PlannerSpec = Field(default_factory=PlannerSpec)
    instrument: InstrumentSpec | None = None
    instruments: list[InstrumentSpec] = Field(default_factory=list, max_length=64)
    pipeline: bool = True
    review: ReviewSpec = Field(default_factory=ReviewSpec)
    failures: FailureSpec = Field(default_factory=FailureSpec)
    folder: str | None = None
    seed: int | None = None
    plan: PlanSpec = Field(default_factory=PlanSpec)

    @field_validator("plan")
    @classmethod
    def _plan_fits_the_variables(cls, plan: PlanSpec, info: ValidationInfo) -> PlanSpec:
        plan.check_variables(info.data.get("variables") or {})
        return plan

    metadata: RunMetadata = Field(default_factory=dict)
    suspenders: list[SuspenderSpec] = Field(default_factory=list)
    publish: PublishSpec | None = None
    tiled: TiledSpec | None = None
    arrays: ArraysSpec = Field(default_factory=ArraysSpec)
    store: str | None = None
    prior: str | None = None

    @field_validator("store")
    @classmethod
    def _store_is_postgresql(cls, value: str | None) -> str | None:
        return None if value is None else check_store_url(value)

    @model_validator(mode="before")
    @classmethod
    def _finite_everywhere(cls, data: Any) -> Any:
        path = non_finite_path(data)
        if path is not None:
            raise FieldError(path, "not a finite number (NaN and infinity are refused)")
        return data

    @field_validator("name")
    @classmethod
    def one_line(cls, value: str) -> str:
        if not value.strip() or not value.isprintable() or len(value) > 200:
            raise ValueError("must be one line of printable text, at most 200 characters")
        return value

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_in_range(cls, value: Any) -> Any:
        if value is not None and (type(value) is not int or not 0 <= value <= MAX_SEED):
            raise ValueError(f"must be an integer from 0 to {MAX_SEED}, got {value!r}")
        return value

    @field_validator("variables", "objectives", "constraints", "constants")
    @classmethod
    def _usable_names(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        for name in value:
            problem = name_problem(name)
            if problem is None and info.field_name in ("variables", "constants"):
                problem = input_name_problem(name)
            if problem is not None:
                raise FieldError(repr(name) if "." in name else path_segment(name), problem)
        return value

    @field_validator("folder")
    @classmethod
    def _folder_path(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or not value.isprintable()):
            raise ValueError("must be a path: not empty, one line of printable text")
        try:
            Path(value or ".").expanduser()
        except RuntimeError:
            raise ValueError(f"'{value}': no home folder for that user") from None
        return value

    @field_validator("variables")
    @classmethod
    def _some_variables(cls, value: dict[str, VariableSpec]) -> dict[str, VariableSpec]:
        if not value:
            raise ValueError("at least one variable is needed")
        return value

    @field_validator("objectives")
    @classmethod
    def _some_objectives(cls, value: dict[str, ObjectiveSpec]) -> dict[str, ObjectiveSpec]:
        if not value:
            raise ValueError("at least one objective is needed")
        return value

    @model_validator(mode="after")
    def _instrument_or_instruments(self) -> SessionSpec:
        if (self.instrument is None) == (not self.instruments):
            raise FieldError("instrument", "give 'instrument' (one) or 'instruments' (a list), exactly one of them")
        seen: set[str] = set()
        for index, (name, _) in enumerate(self.lanes()):
            if name in seen:
                raise FieldError(f"instruments.{index}.name", f"'{name}' names two instruments; give each its own")
            seen.add(name)
        return self

    @model_validator(mode="after")
    def _run_engine_options_need_the_in_process_engine(self) -> SessionSpec:
        # suspenders, publishing and Tiled are the RunEngine's: with a queueserver the RunEngine is the manager's,
        # so they belong in its startup profile; refused rather than silently ignored
        if not any(lane.queueserver is not None for _, lane in self.lanes()):
            return self
        where = {
            "suspenders": "install suspenders in the manager's startup profile (RE.install_suspender)",
            "publish": "the manager's RunEngine already publishes to its 0MQ proxy: subscribe to "
            "instrument.queueserver.documents_address",
            "tiled": "subscribe a Tiled writer to the manager's RunEngine in its startup profile, and name that "
            "server in instrument.queueserver.tiled (read back on resume)",
        }
        for field, hint in where.items():
            if getattr(self, field):
                raise FieldError(field, f"with a queueserver instrument, {hint}")
        return self

    def lanes(self) -> list[tuple[str, InstrumentSpec]]:
        """Every instrument with its name: ``instrument`` alone, or each of ``instruments``."""
        if self.instrument is not None:
            return [(self.instrument.name or "instrument", self.instrument)]
        return [(spec.name or f"instrument-{i + 1}", spec) for i, spec in enumerate(self.instruments)]

    def one_instrument(self) -> InstrumentSpec:
        """The instrument of a spec for one: a session file's ``instrument``, or the one :meth:`for_instrument`
        gives an executor.

        Raises:
            SpecError: the spec names several (``instruments``): an executor takes :meth:`for_instrument`'s spec.
        """
        if self.instrument is None:
            raise SpecError("instruments: several instruments; an executor runs one (see SessionSpec.for_instrument)")
        return self.instrument

    def for_instrument(self, index: int) -> SessionSpec:
        """This spec as seen by one of its instruments' executors: ``instrument`` is that one.

        Among several instruments, each after the first gets the seed plus its index (simulated copies of one
        instrument then have noise of their own).
        """
        _, instrument = self.lanes()[index]
        seed = (self.seed + index) % 2**32 if self.seed is not None and index else self.seed
        return self.model_copy(update={"instrument": instrument, "instruments": [], "seed": seed})

    @model_validator(mode="after")
    def _names_unique(self) -> SessionSpec:
        seen: dict[str, str] = {}
        for section in ("variables", "constants", "objectives", "constraints"):
            for name in getattr(self, section):
                if name in seen:
                    where = f"{section}.{path_segment(name)}"
                    raise FieldError(where, f"the name '{name}' is already used in {seen[name]}")
                seen[name] = section
        return self

    @model_validator(mode="after")
    def _one_input_per_device(self) -> SessionSpec:
        movers: dict[str, str] = {}  # device -> the input that moves it
        for name in self.variables:
            device = self.device_of(name)
            where = f"variables.{path_segment(name)}"
            if device in movers:
                how = "" if self.variables[name].device else " (by default, the device named like the variable)"
                raise FieldError(
                    f"{where}.device", f"device '{device}'{how} is already moved by {movers[device]}; one input each"
                )
            movers[device] = where
        for name, constant in self.constants.items():
            if constant.device is None:
                continue
            where = f"constants.{path_segment(name)}"
            if constant.device in movers:
                raise FieldError(
                    f"{where}.device", f"device '{constant.device}' is already moved by {movers[constant.device]}"
                )
            movers[constant.device] = where
        readers: dict[str, str] = {}
        for name in self.variables:
            where = f"variables.{path_segment(name)}"
            readback = self.readback_of(name)
            if readback in readers:
                raise FieldError(f"{where}.readback", f"'{readback}' is already read back by {readers[readback]}")
            if movers.get(readback, where) != where:
                raise FieldError(f"{where}.readback", f"'{readback}' is the device of {movers[readback]}, not this one")
            readers[readback] = where
        return self

    def device_of(self, variable: str) -> str:
        """The device name that moves ``variable``."""
        return self.variables[variable].device or variable

    def readback_of(self, variable: str) -> str:
        """The event field holding ``variable``'s read-back position."""
        spec = self.variables[variable]
        return spec.readback or self.device_of(variable)

    def field_of(self, output: str) -> str:
        """The event field an objective or constraint reads."""
        spec = self.objectives.get(output) or self.constraints.get(output)
        if spec is None:
            raise KeyError(output)
        return spec.field or output

    @property
    def outputs(self) -> list[str]:
        """Objective names, then constraint names: what each run must measure."""
        return list(self.objectives) + list(self.constraints)

    def feasible(self, values: dict[str, float]) -> bool:
        """Whether measured outputs satisfy every outcome constraint."""
        return all(name in values and c.satisfied(values[name]) for name, c in self.constraints.items())

    def vocs(self) -> VOCS:
        """The optimization problem as a gest-api ``VOCS`` (what a planner sees)."""
        variables: dict[str, Any] = {}
        for name, v in self.variables.items():
            variables[name] = [v.bounds[0], v.bounds[1]] if v.bounds is not None else set(v.values or [])
        constraints = {
            name: ["LESS_THAN", c.less_than] if c.less_than is not None else ["GREATER_THAN", c.greater_than]
            for name, c in self.constraints.items()
        }
        return VOCS(
            variables=variables,
            objectives={name: o.direction.value.upper() for name, o in self.objectives.items()},
            constraints=constraints,
            constants={name: c.value for name, c in self.constants.items()},
        )


def folder_path(session_file: Path, folder: str) -> Path:
    """The session folder a session file at ``session_file`` names with ``folder:``: an absolute path as it is,
    ``~`` expanded, a relative one from the file's own folder (``..`` goes up from there), resolved."""
    return (session_file.parent / Path(folder).expanduser()).resolve()


def check_store_url(url: str) -> str:
    """``url`` if it names a PostgreSQL store (``postgresql://`` or ``postgres://``); the message never shows it,
    since it may hold a password.

    Raises:
        ValueError: any other URL (its scheme is named).
    """
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme.lower() not in ("postgresql", "postgres") or not url.partition("://")[2]:
        shown = f"a {scheme}:// URL" if scheme.isalnum() else "no URL"
        raise ValueError(f"must be a postgresql:// URL (SQLite in the session folder is the default), got {shown}")
    return url


def spec_from_dict(data: Any, source: str = "session") -> SessionSpec:
    """Validate a parsed session file.

    Raises:
        SpecError: one line naming the first bad field.
    """
    if not isinstance(data, dict):
        raise SpecError(f"{source}: the session file must be a mapping of keys to values")
    try:
        return SessionSpec.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(describe_error(error) for error in exc.errors())
        raise SpecError(f"{source}: {details}") from None


def load_spec(path: str | Path) -> SessionSpec:
    """Load and validate a session file (read with :mod:`closedloop.files`' limits: 1 MiB, UTF-8, strict YAML).

    Raises:
        SpecError: the file is missing, too large, not UTF-8, not YAML (or has a duplicate key or an alias bomb),
            or invalid; the message names the file and the field.
    """
    data = load_yaml_file(path, SESSION_FILE_LIMIT, "session file")
    return spec_from_dict(data, source=str(path))
