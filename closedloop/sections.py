"""The session file's smaller sections: the budget, the planner, when to ask an operator, what to do when runs
keep failing. :class:`~closedloop.spec.SessionSpec` holds one of each.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from closedloop.plugins import check_import_path

STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
"""The configuration of every section model: unknown keys refused, NaN and infinities too."""


class BudgetSpec(BaseModel):
    """When the session ends.

    Attributes:
        experiments: number of successful experiments to run.
    """

    model_config = STRICT

    experiments: int = Field(ge=1, le=2**31 - 1, strict=True)


class PlannerSpec(BaseModel):
    """Which planner proposes points and its options.

    Attributes:
        name: a name registered in the ``closedloop.planners`` entry-point group, or the import path of any
            gest-api generator class (``"package.module:Class"``).
        options: keyword arguments for the planner's constructor.
        batch_size: points proposed (and reviewed) together.
        initial_design: Sobol points proposed before the planner is first asked, for generators that cannot
            start without data (Xopt's Bayesian generators, for example); 0 leaves the start to the planner. It
            is first asked once all but one of their results are in (see ``planners.warmup.WarmStart``).
    """

    model_config = STRICT

    name: str = "botorch"
    options: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(default=1, ge=1, le=10_000, strict=True)
    initial_design: int = Field(default=0, ge=0, le=100_000, strict=True)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        # the form only: whether it names a registered planner or imports is closedloop.resolve's step
        if ":" in value:
            check_import_path(value)
        elif not value.strip() or not value.isprintable():
            raise ValueError("must be a registered planner's name or an import path 'package.module:Class'")
        return value


class ReviewPolicy(str, Enum):
    """When the loop stops for a human: every time, never, or by the rules in :class:`ReviewSpec`."""

    ALWAYS = "always"
    NEVER = "never"
    RULES = "rules"


class RiskySpec(BaseModel):
    """What makes a proposal risky enough to ask an operator (any one of them asks).

    Attributes:
        step: a move longer than this from the current position (in the variable's units).
        margin: a setpoint within this distance of a hard limit.
        std: a predicted standard deviation of an objective above this (planners that predict).
    """

    model_config = STRICT

    step: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    margin: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    std: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class ReviewSpec(BaseModel):
    """When to hold proposals for an operator, and how long to wait for one.

    ``policy: always`` holds every proposal, ``never`` runs unattended. The rules ``first``, ``every``, ``risky``
    and ``after_failure`` combine (any of them asks); giving any of them means ``policy: rules``.

    Attributes:
        policy: ``always``, ``never`` or ``rules``.
        first: ask for the first N proposals of the session.
        every: ask at every Nth iteration.
        risky: ask when a proposal is risky (see :class:`RiskySpec`).
        after_failure: ask for the proposal after a failed run.
        timeout: seconds a checkpoint waits for an answer (none: wait for ever).
        on_timeout: what happens then: ``pause`` the session, or ``approve`` the proposals.
    """

    model_config = STRICT

    policy: ReviewPolicy = ReviewPolicy.ALWAYS
    first: int | None = Field(default=None, ge=1)
    every: int | None = Field(default=None, ge=1)
    risky: RiskySpec | None = None
    after_failure: bool = False
    timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    on_timeout: Literal["pause", "approve"] = "pause"

    @model_validator(mode="after")
    def _rules_or_policy(self) -> ReviewSpec:
        rules = self.first is not None or self.every is not None or self.risky is not None or self.after_failure
        if rules and "policy" not in self.model_fields_set:
            self.policy = ReviewPolicy.RULES
        elif rules and self.policy != ReviewPolicy.RULES:
            raise ValueError(f"policy '{self.policy.value}' with first/every/risky/after_failure: use policy: rules")
        elif self.policy == ReviewPolicy.RULES and not rules:
            raise ValueError("policy 'rules' needs at least one of first, every, risky, after_failure")
        return self


class FailureSpec(BaseModel):
    """What the loop does when runs keep failing.

    Attributes:
        max_consecutive: failed runs in a row that trigger ``then``.
        then: ``pause`` (wait for an operator, who may resume) or ``stop`` (end the session).
    """

    model_config = STRICT

    max_consecutive: int = Field(default=3, ge=1, le=1_000_000, strict=True)
    then: Literal["pause", "stop"] = "pause"
