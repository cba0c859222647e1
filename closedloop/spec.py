"""The session spec: what a session file says, validated at load time.

A session file (YAML) describes one autonomous session: the variables and the devices that move them, the
objectives and the event fields they read, the budget, the planner, the instrument and the review policy.
:meth:`SessionSpec.vocs` maps the optimization part onto a gest-api ``VOCS``, which is what planners see.
"""

from __future__ import annotations

import importlib
from enum import Enum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml
from gest_api.vocs import VOCS
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from closedloop.errors import SpecError
from closedloop.problem import ConstantSpec, ConstraintSpec, ObjectiveSpec, VariableSpec
from closedloop.queueserver import QueueServerSpec

_STRICT = ConfigDict(extra="forbid")


class BudgetSpec(BaseModel):
    """When the session ends.

    Attributes:
        experiments: number of successful experiments to run.
    """

    model_config = _STRICT

    experiments: int = Field(ge=1)


PLANNER_GROUP = "closedloop.planners"


def registered_planners() -> list[str]:
    """Names of the planners registered in the ``closedloop.planners`` entry-point group."""
    return sorted({entry.name for entry in entry_points(group=PLANNER_GROUP)})


class PlannerSpec(BaseModel):
    """Which planner proposes points and its options.

    Attributes:
        name: a name registered in the ``closedloop.planners`` entry-point group, or the import path of any
            gest-api generator class (``"package.module:Class"``).
        options: keyword arguments for the planner's constructor.
        batch_size: points proposed (and reviewed) together.
        initial_design: Sobol points proposed before the planner is first asked, for generators that cannot
            start without data (Xopt's Bayesian generators, for example); 0 leaves the start to the planner.
    """

    model_config = _STRICT

    name: str = "botorch"
    options: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(default=1, ge=1)
    initial_design: int = Field(default=0, ge=0)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if ":" in value:
            resolve_import_path(value)
        elif value not in registered_planners():
            raise ValueError(f"unknown planner '{value}'; registered: {', '.join(registered_planners()) or 'none'}")
        return value


class InstrumentSpec(BaseModel):
    """Where the devices come from: a bundled simulator by name, a factory by import path, or a queueserver.

    A factory is ``"package.module:function"``; called with ``options`` as keyword arguments it returns a dict
    from device name to ophyd-async (or ophyd) device. Devices that move no variable are triggered and read as
    detectors. ``queueserver`` runs the proposals on a bluesky-queueserver RE Manager's devices instead.
    """

    model_config = _STRICT

    simulator: str | None = None
    factory: str | None = None
    queueserver: QueueServerSpec | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> InstrumentSpec:
        if [self.simulator, self.factory, self.queueserver].count(None) != 2:
            raise ValueError("give exactly one of 'simulator', 'factory' or 'queueserver'")
        if self.queueserver is not None:
            return self
        factory = resolve_import_path(self.factory_path)
        if not callable(factory):
            raise ValueError(f"'{self.factory_path}' is not callable")
        return self

    @property
    def factory_path(self) -> str:
        """The import path of the device factory (bundled simulators live in ``simulators``)."""
        if self.factory is not None:
            return self.factory
        return f"simulators:{self.simulator}"


class ReviewPolicy(str, Enum):
    """When the loop stops for a human."""

    ALWAYS = "always"
    NEVER = "never"


class ReviewSpec(BaseModel):
    """The review policy: ``always`` holds every batch for an operator, ``never`` runs unattended."""

    model_config = _STRICT

    policy: ReviewPolicy = ReviewPolicy.ALWAYS


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
        review: when to stop for a human.
        folder: the session folder (relative to the session file); ``closedloop run --dir`` overrides it.
        seed: seed for the planner and the simulator, for reproducible sessions.
    """

    model_config = _STRICT

    name: str = "session"
    variables: dict[str, VariableSpec]
    objectives: dict[str, ObjectiveSpec]
    constraints: dict[str, ConstraintSpec] = Field(default_factory=dict)
    constants: dict[str, ConstantSpec] = Field(default_factory=dict)
    budget: BudgetSpec
    planner: PlannerSpec = Field(default_factory=PlannerSpec)
    instrument: InstrumentSpec
    review: ReviewSpec = Field(default_factory=ReviewSpec)
    folder: str | None = None
    seed: int | None = None

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
    def _names_unique(self) -> SessionSpec:
        inputs = set(self.variables) | set(self.constants)
        outputs = set(self.objectives) | set(self.constraints)
        clash = sorted((set(self.variables) & set(self.constants)) | (inputs & outputs))
        if clash:
            raise ValueError(f"the name '{clash[0]}' is used twice (variables, constants, objectives, constraints)")
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


def resolve_import_path(path: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute.

    Raises:
        ValueError: the path is malformed or does not import.
    """
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"'{path}' is not of the form 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"'{path}' does not import: {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"'{path}' does not import: module '{module_name}' has no '{attribute}'") from None


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _describe(error: ErrorDetails) -> str:
    path = _field_path(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key"
    if error["type"] == "missing":
        return f"{path}: required but missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{path}: {message}"


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
        details = "; ".join(_describe(error) for error in exc.errors())
        raise SpecError(f"{source}: {details}") from None


def load_spec(path: str | Path) -> SessionSpec:
    """Load and validate a session file.

    Raises:
        SpecError: the file is missing, not YAML, or invalid; the message names the field.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the session file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return spec_from_dict(data, source=str(path))
