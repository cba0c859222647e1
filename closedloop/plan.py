"""The ``plan:`` section of a session file: which Bluesky plan carries out each proposal, and how.

A session names either a bundled plan or a plan factory of its own::

    plan:
      name: scan                        # bundled: measure (the default) or scan
      options: {variable: pitch1, width: 0.4, num: 21}
      count_time: 0.5                   # seconds of exposure per reading (bundled plans)
      monitor: i0                       # objectives read field / monitor (I0 normalisation)

    plan:
      factory: mylab.plans:align        # called once per proposal, returns the plan
      options: {exposure: 2.0}          # extra keyword arguments for the factory

- ``measure`` moves every variable and constant to its setpoint together, then takes ``num`` readings
  (options: ``num``, default 1); each objective is the mean of its readings.
- ``scan`` moves every variable to its setpoint, then steps ``variable`` through ``num`` points across
  ``width`` centred on the proposal's setpoint (cut to the variable's hard limits) and takes one reading at each;
  objectives come from reducers (``instruments.reducers:peak_position``, ``fwhm``, ``centroid``,
  ``integrated_intensity``) or are the mean of their field over the scan.
- A factory is called as ``factory(setpoints=..., movers=..., detectors=..., md=..., **options)`` and must return
  a generator of Bluesky messages making one run whose start document carries ``md``.

pydantic only: the plans themselves live in :mod:`instruments.plans`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from closedloop.problem import VariableSpec

_STRICT = ConfigDict(extra="forbid")

BundledPlan = Literal["measure", "scan"]
FACTORY_ARGUMENTS = ("setpoints", "movers", "detectors", "md")
"""The keyword arguments every plan factory is called with (its ``options`` come on top)."""


class MeasureOptions(BaseModel):
    """Options of the bundled ``measure`` plan.

    Attributes:
        num: readings taken at the point, in one run; each objective is the mean of its readings.
    """

    model_config = _STRICT

    num: int = Field(default=1, ge=1, description="readings taken at the point; objectives are their mean")


class ScanOptions(BaseModel):
    """Options of the bundled ``scan`` plan.

    Attributes:
        variable: the variable scanned; the others stay at their setpoints.
        width: the full width of the range, centred on the proposal's setpoint (cut to the hard limits).
        num: points in the scan, one reading each (the run's ``primary`` events).
    """

    model_config = _STRICT

    variable: str = Field(description="the variable scanned around each proposal's setpoint")
    width: float = Field(gt=0, description="full width of the scanned range, centred on the setpoint")
    num: int = Field(default=11, ge=3, description="points in the scan, one reading each")


_OPTIONS: dict[str, type[BaseModel]] = {"measure": MeasureOptions, "scan": ScanOptions}


class PlanSpec(BaseModel):
    """Which plan carries out each proposal.

    Attributes:
        name: a bundled plan, ``measure`` (the default) or ``scan``.
        factory: instead of ``name``, the import path of a plan factory, ``"package.module:function"``.
        options: the bundled plan's options (:class:`MeasureOptions`, :class:`ScanOptions`), or extra keyword
            arguments for the factory.
        count_time: seconds of exposure per reading, for the bundled plans: the livetime a StandardDetector is
            prepared with, or the value put in a detector's acquire-time signal for the run (restored after).
        monitor: a device or event field read in the ``primary`` stream to normalise by: every objective
            reads ``field / monitor`` (constraints read their field as it is).
    """

    model_config = _STRICT

    name: BundledPlan | None = None
    factory: str | None = None
    options: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    count_time: float | None = Field(default=None, gt=0)
    monitor: str | None = None

    @field_validator("factory")
    @classmethod
    def _factory_imports(cls, value: str | None) -> str | None:
        from closedloop.plugins import check_import_path

        # the form only: importing it (and checking what it takes) is closedloop.resolve's step
        return value if value is None else check_import_path(value)

    @field_validator("options")
    @classmethod
    def _options_fit_the_plan(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if info.data.get("factory") is not None:
            clash = sorted(set(value) & set(FACTORY_ARGUMENTS))
            if clash:
                raise ValueError(f"'{clash[0]}' is given by closedloop to every factory, not an option")
            return value
        model = _OPTIONS[info.data.get("name") or "measure"]
        try:
            model.model_validate(value)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            what = "unknown option" if error["type"] == "extra_forbidden" else str(error["msg"])
            known = ", ".join(model.model_fields)
            raise ValueError(f"{where}: {what} (options of '{info.data.get('name') or 'measure'}': {known})") from None
        return value

    @model_validator(mode="after")
    def _one_plan(self) -> PlanSpec:
        if self.name is not None and self.factory is not None:
            raise ValueError("give one of 'name' (a bundled plan) or 'factory' (your own), not both")
        if self.factory is not None and self.count_time is not None:
            raise ValueError("count_time applies to the bundled plans; give your factory its own option")
        return self

    @property
    def label(self) -> str:
        """The plan's name for people and for the start document: the bundled name or the factory's path."""
        return self.factory or self.name or "measure"

    @property
    def bundled(self) -> BundledPlan | None:
        """The bundled plan in use (``measure`` when nothing is named), or None for a factory."""
        if self.factory is not None:
            return None
        return self.name or "measure"

    def measure_options(self) -> MeasureOptions:
        """The ``measure`` plan's options, typed (defaults for any other plan)."""
        return MeasureOptions.model_validate(self.options if self.bundled == "measure" else {})

    def scan_options(self) -> ScanOptions:
        """The ``scan`` plan's options, typed.

        Raises:
            ValueError: the plan is not ``scan``.
        """
        if self.bundled != "scan":
            raise ValueError(f"plan '{self.label}' is not a scan")
        return ScanOptions.model_validate(self.options)

    @property
    def expected_events(self) -> int | None:
        """Events the plan makes in the ``primary`` stream, or None when a factory's plan decides."""
        if self.bundled == "scan":
            return self.scan_options().num
        if self.bundled == "measure":
            return self.measure_options().num
        return None

    def check_variables(self, variables: Mapping[str, VariableSpec]) -> None:
        """Check the plan against the session's variables (the scanned variable exists, is numeric, fits).

        Raises:
            ValueError: naming the option at fault.
        """
        if self.bundled != "scan" or not variables:
            return
        scan = self.scan_options()
        variable = variables.get(scan.variable)
        if variable is None:
            raise ValueError(f"options.variable: '{scan.variable}' is not a variable ({', '.join(variables)})")
        if variable.values is not None:
            raise ValueError(f"options.variable: '{scan.variable}' has listed values; a scan needs a continuous one")
        if variable.max_step is not None and scan.width / 2 > variable.max_step:
            raise ValueError(
                f"options.width: half the width ({scan.width / 2:g}) exceeds variables.{scan.variable}.max_step "
                f"({variable.max_step:g}), the move from the setpoint to the start of the scan"
            )
