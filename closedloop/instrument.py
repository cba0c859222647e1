"""What a session file says about the instrument and the RunEngine around it.

:class:`InstrumentSpec` names where the devices come from and the timeouts and retries a run gets;
:class:`SuspenderSpec` a signal that holds a run while it is below a floor (a ring current);
:class:`PublishSpec` where the run documents are published; :data:`RunMetadata` the session's own keys for every
start document. :class:`~closedloop.spec.SessionSpec` puts them together.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from closedloop.queueserver import QueueServerSpec

_STRICT = ConfigDict(extra="forbid")

RESERVED_METADATA = ("proposal_id", "session_id", "iteration", "uid", "time", "scan_id")
"""Start-document keys closedloop or the RunEngine set on every run; a session's ``metadata`` may not set them."""


class RetrySpec(BaseModel):
    """How a run that failed of a transient fault is tried again.

    A device marks a fault as transient by raising an exception with the attribute ``transient = True`` (anywhere
    in the exception's chain of causes); any other failure is never retried.

    Attributes:
        attempts: the most times one proposal's run is tried (1: never retried).
        backoff: seconds to wait before the first retry; doubled before each further one.
    """

    model_config = _STRICT

    attempts: int = Field(default=1, ge=1, le=100)
    backoff: float = Field(default=1.0, ge=0, le=3600, allow_inf_nan=False)


class InstrumentSpec(BaseModel):
    """Where the devices come from: a bundled simulator by name, or a factory by import path.

    A factory is ``"package.module:function"``; called with ``options`` as keyword arguments it returns a dict
    from device name to device: ophyd-async devices and ophyd classic devices (``EpicsMotor``, ``ophyd.sim``'s
    ``SynAxis``), mixed as the beamline has them. A factory that takes a ``run_engine`` keyword is given the
    session's RunEngine (to install its own suspenders or subscriptions). Devices that move no variable are
    triggered and read as detectors.

    Attributes:
        name: what operators and ``status`` call this instrument (a session with several needs one per instrument;
            default ``instrument`` and, among several, ``instrument-2``, ``instrument-3``...).
        simulator: a bundled simulator's name (``beamline``, ``branin``, ``hartmann6``).
        factory: the import path of a device factory.
        queueserver: run the proposals on a bluesky-queueserver RE Manager's devices instead (see
            :class:`~closedloop.queueserver.QueueServerSpec`).
        options: keyword arguments for the factory.
        connect_timeout: seconds each device has to connect before the session is refused.
        run_timeout: seconds one run may take before it is aborted and recorded as failed (the loop goes on).
            None (the default) derives one from the plan once the devices connect: four times the longest run the
            plan can make (each variable's motor over its whole hard-limit span at its velocity, then the plan's
            readings at the detectors' exposure or ``plan.count_time``), and at least 60 s
            (``instruments.timeouts``). Time a suspender holds a run does not count.
        retries: how runs that failed of a transient fault are tried again.
    """

    model_config = _STRICT

    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][\w.-]{0,63}$")
    simulator: str | None = None
    factory: str | None = None
    queueserver: QueueServerSpec | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    connect_timeout: float = Field(default=10.0, gt=0, le=3600, allow_inf_nan=False)
    run_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    retries: RetrySpec = Field(default_factory=RetrySpec)

    @field_validator("factory", "simulator")
    @classmethod
    def _imports(cls, value: str | None, info: ValidationInfo) -> str | None:
        """The form of a factory's import path, or of a bundled simulator's name; importing them is
        :func:`closedloop.resolve.resolve`'s step."""
        from closedloop.plugins import check_import_path

        if value is None:
            return value
        if info.field_name == "simulator":
            if ":" in value:
                raise ValueError(
                    f"'{value}' is a bundled simulator's name (beamline, branin, hartmann6); use 'factory'"
                )
            return value
        return check_import_path(value)

    @model_validator(mode="after")
    def _one_source(self) -> InstrumentSpec:
        if [self.simulator, self.factory, self.queueserver].count(None) != 2:
            raise ValueError("give exactly one of 'simulator', 'factory' or 'queueserver'")
        return self

    @property
    def factory_path(self) -> str:
        """The import path of the device factory (bundled simulators live in ``simulators``)."""
        if self.factory is not None:
            return self.factory
        return f"simulators:{self.simulator}"


class SuspenderSpec(BaseModel):
    """A signal that holds the run while it is below a floor, as beamlines hold scans while the beam is down.

    Attributes:
        signal: the signal's path from a device of the instrument, dotted: ``"ring.current"``.
        below: the run is suspended while the signal is below this value.
        resume_above: the run resumes once the signal is back above this value (default: ``below``).
        sleep: seconds to wait after the signal is back before the run resumes.
    """

    model_config = _STRICT

    signal: str = Field(pattern=r"^[A-Za-z_][\w-]*(\.[A-Za-z_]\w*)*$")
    below: float = Field(allow_inf_nan=False)
    resume_above: float | None = Field(default=None, allow_inf_nan=False)
    sleep: float = Field(default=0.0, ge=0, le=3600, allow_inf_nan=False)

    @model_validator(mode="after")
    def _resume_not_below_floor(self) -> SuspenderSpec:
        if self.resume_above is not None and self.resume_above < self.below:
            raise ValueError(f"resume_above {self.resume_above} is below the floor {self.below}")
        return self


_ADDRESS = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")


class PublishSpec(BaseModel):
    """Where every run's documents are published, as JSON, for the usual consumers.

    Attributes:
        address: ``host:port`` of a bluesky 0MQ proxy's input (``bluesky-0MQ-proxy IN OUT``).
    """

    model_config = _STRICT

    address: str

    @model_validator(mode="after")
    def _host_and_port(self) -> PublishSpec:
        match = _ADDRESS.match(self.address)
        if match is None or not 0 < int(match["port"]) < 65536:
            raise ValueError(f"address '{self.address}' is not host:port (port 1-65535)")
        return self


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    reserved = [key for key in value if key in RESERVED_METADATA]
    if reserved:
        raise ValueError(f"key '{reserved[0]}' is reserved (closedloop or the RunEngine sets it in every run)")
    for key, item in value.items():
        try:
            json.dumps(item, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(f"'{key}' is not plain JSON data (text, numbers, lists, mappings)") from None
    return value


RunMetadata = Annotated[dict[str, Any], AfterValidator(_check_metadata)]
"""Keys merged into every start document; none of :data:`RESERVED_METADATA`, every value plain JSON."""
