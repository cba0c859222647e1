"""What a session optimizes: its variables, constants, objectives and outcome constraints, as the session file
gives them. :mod:`closedloop.spec` puts them together into a :class:`~closedloop.spec.SessionSpec`.
"""

from __future__ import annotations

import re
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


Value = float | str

#: Names a session may not use: gest-api puts a point's id under ``_id`` in every point and result.
RESERVED_NAMES = frozenset({"_id"})
_NAME = re.compile(r"[^\W\d_][\w.\-]*", re.UNICODE)
_MAX_NAME = 100

#: The largest magnitude a bound, hard limit, value or step may have. Beyond it a number is no position of any
#: device (float64 then cannot tell apart positions 0.1 apart) and a span between two bounds may overflow.
MAX_MAGNITUDE = 1e15


class FieldError(ValueError):
    """A validator's complaint about a field below the one it validates (``path`` is relative to it).

    Args:
        path: the dotted path from the validated field to the bad one (``"pitch1.device"``).
        message: what is wrong, in one line.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def path_segment(name: str) -> str:
    """``name`` as one segment of a dotted field path: as it is when it is a plain name, quoted otherwise."""
    return name if _NAME.fullmatch(name) or name == "(top level)" else repr(name)


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a variable, constant, objective or constraint, or None when it can.

    A name starts with a letter and holds letters, digits, ``_``, ``.`` and ``-`` only (at most 100 characters):
    names become keys of every point, result and record, and words on the command line (``NAME=VALUE``).
    Names starting with ``_`` belong to the generator protocol (gest-api's ``_id``).
    """
    if not name.strip():
        return "a name cannot be empty or blank"
    if name in RESERVED_NAMES or name.startswith("_"):
        return f"the name {name!r} is reserved: gest-api puts each point's id under '_id'; start names with a letter"
    if len(name) > _MAX_NAME:
        return f"a name is at most {_MAX_NAME} characters"
    if not _NAME.fullmatch(name):
        return f"{name!r} is not a usable name: start with a letter; use letters, digits, '_', '.', '-'"
    return None


def input_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a variable or a constant, beyond :func:`name_problem`, or None when it can.

    Their names key the ``closedloop.movers`` entry of every run's start document, where event-model refuses
    ``.`` (a run would fail before anything is read); objectives and constraints may hold dots.
    """
    if "." in name:
        return (
            "a variable's or constant's name cannot hold '.' (it keys every run's start document, where event-model "
            "refuses dots); use '_' or '-', and 'device: stage.x' for a child device"
        )
    return None


def _sane(value: float, what: str) -> float:
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"{what} {value:g} is beyond +-{MAX_MAGNITUDE:g}: no device position is that large")
    return value


def _label(value: str | None) -> str | None:
    """A device or event-field name: non-empty, no spaces or control characters."""
    if value is not None and (not value or not value.isprintable() or any(c.isspace() for c in value)):
        raise ValueError(f"{value!r} is not a device or field name (empty, or holds spaces or control characters)")
    return value


class VariableSpec(BaseModel):
    """One variable the planner may set.

    A continuous variable has ``bounds``; a discrete one lists its allowed ``values`` (numbers: ordered
    settings such as a filter thickness; strings: categories such as a crystal or a filter name).

    Attributes:
        bounds: ``[low, high]`` the planner searches within (continuous variables).
        values: the allowed settings (discrete or categorical variables).
        hard_limits: ``[low, high]`` no numeric setpoint may ever cross; defaults to ``bounds`` (or the range of
            numeric ``values``).
        max_step: the largest move allowed in one step from the current position, in the variable's units; a
            longer move is made in steps of at most this (an executor that cannot step has the safety gate refuse
            it), and planners that support it keep their proposals within it.
        device: name of the instrument device that moves it; defaults to the variable's name.
        readback: event field holding the position read back; defaults to the device name.
        units: for people only.
    """

    model_config = _STRICT

    bounds: tuple[float, float] | None = None
    values: list[Value] | None = None
    hard_limits: tuple[float, float] | None = None
    max_step: float | None = Field(default=None, gt=0)
    device: str | None = None
    readback: str | None = None
    units: str = ""

    _device_names = field_validator("device", "readback")(_label)

    @field_validator("bounds", "hard_limits")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None:
            for end in value:
                _sane(end, "a limit of")
            if not value[0] < value[1]:
                raise ValueError(f"low must be below high, got [{value[0]}, {value[1]}]")
        return value

    @field_validator("max_step")
    @classmethod
    def _sane_step(cls, value: float | None) -> float | None:
        return None if value is None else _sane(value, "a step of")

    @field_validator("values")
    @classmethod
    def _distinct(cls, value: list[Value] | None) -> list[Value] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("at least one value is needed")
        if len(set(value)) != len(value):
            raise ValueError("values must be distinct")
        if any(isinstance(v, str) for v in value) and not all(isinstance(v, str) for v in value):
            raise ValueError("values must be all numbers or all names, not a mix")
        for v in value:
            if not isinstance(v, str):
                _sane(v, "a value of")
        return value

    @model_validator(mode="after")
    def _inside_limits(self) -> VariableSpec:
        if (self.bounds is None) == (self.values is None):
            raise ValueError("give exactly one of 'bounds' (continuous) or 'values' (discrete)")
        if self.categorical and (self.hard_limits is not None or self.max_step is not None):
            raise ValueError("hard_limits and max_step apply to numbers, not to named values")
        if self.hard_limits is not None:
            lo, hi = self.hard_limits
            low, high = self.range
            if low < lo or high > hi:
                what = "bounds" if self.bounds is not None else "values"
                raise ValueError(f"{what} [{low}, {high}] go outside hard_limits [{lo}, {hi}]")
        return self

    @property
    def categorical(self) -> bool:
        """True when the values are names rather than numbers."""
        return self.values is not None and all(isinstance(v, str) for v in self.values)

    @property
    def range(self) -> tuple[float, float]:
        """The numeric search range: ``bounds``, or the smallest and largest numeric value."""
        if self.bounds is not None:
            return self.bounds
        numbers = [float(v) for v in self.values or []]
        return (min(numbers), max(numbers))

    @property
    def limits(self) -> tuple[float, float]:
        """The hard limits in force (the search range when none were given)."""
        return self.hard_limits if self.hard_limits is not None else self.range


class ConstantSpec(BaseModel):
    """A setting held fixed for the whole session (gest-api's constants).

    Attributes:
        value: the setting.
        device: the device to set it on before each run (none: it is only recorded and told to the planner).
        hard_limits: ``[low, high]`` a numeric value must lie within.
    """

    model_config = _STRICT

    value: Value
    device: str | None = None
    hard_limits: tuple[float, float] | None = None

    _device_name = field_validator("device")(_label)

    @model_validator(mode="after")
    def _inside_limits(self) -> ConstantSpec:
        for number in [self.value, *(self.hard_limits or ())]:
            if not isinstance(number, str):
                _sane(number, "a value of")
        if self.hard_limits is not None:
            lo, hi = self.hard_limits
            if isinstance(self.value, str) or not lo <= self.value <= hi:
                raise ValueError(f"value {self.value!r} is outside hard_limits [{lo}, {hi}]")
        return self


class ConstraintSpec(BaseModel):
    """An outcome constraint: a measured field must stay below or above a value for a point to be feasible.

    Attributes:
        field: the event field it reads; defaults to the constraint's name.
        less_than: feasible when the value is below this.
        greater_than: feasible when the value is above this.
        reducer: the import path of a function that computes the value from the run's documents
            (``"package.module:function"``, see :func:`check_reducer`); without one, the value is the mean of
            ``field`` over the run's ``primary`` events.
    """

    model_config = _STRICT

    field: str | None = None
    less_than: float | None = None
    greater_than: float | None = None
    reducer: str | None = None

    @field_validator("reducer")
    @classmethod
    def _reducer_imports(cls, value: str | None) -> str | None:
        return check_reducer(value)

    _field_name = field_validator("field")(_label)

    @model_validator(mode="after")
    def _one_side(self) -> ConstraintSpec:
        if (self.less_than is None) == (self.greater_than is None):
            raise ValueError("give exactly one of 'less_than' or 'greater_than'")
        return self

    def satisfied(self, value: float) -> bool:
        """Whether a measured value is feasible."""
        if self.less_than is not None:
            return value < self.less_than
        return value > float(self.greater_than)  # type: ignore[arg-type]


class Direction(str, Enum):
    """Which way an objective is optimized."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class ObjectiveSpec(BaseModel):
    """One objective, read from an event field.

    Attributes:
        direction: ``maximize`` or ``minimize``.
        field: the event data key it reads (for example ``det-flux``); defaults to the objective's name.
        reducer: the import path of a function that computes the value from the run's documents
            (``"package.module:function"``, see :func:`check_reducer`); without one, the value is the mean of
            ``field`` over the run's ``primary`` events.
    """

    model_config = _STRICT

    direction: Direction = Direction.MAXIMIZE
    field: str | None = None
    _field_name = field_validator("field")(_label)

    reducer: str | None = None

    @field_validator("reducer")
    @classmethod
    def _reducer_imports(cls, value: str | None) -> str | None:
        return check_reducer(value)


def check_reducer(value: str | None) -> str | None:
    """Check the form of a reducer's import path (``"package.module:function"``); whether it imports and is callable
    is :func:`closedloop.resolve.resolve`'s step.

    A reducer is called once per run as ``reducer(documents, field=..., monitor=...)``: ``documents`` are the
    run's ``(name, document)`` pairs as emitted, ``field`` the output's ``field`` (its name by default), and
    ``monitor`` the event field to normalise by (objectives only; None otherwise). It returns a number, or a
    mapping holding one under the output's name. The bundled ones are in ``instruments.reducers``.
    """
    if value is None:
        return value
    from closedloop.plugins import check_import_path

    return check_import_path(value)
