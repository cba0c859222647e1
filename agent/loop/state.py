"""The loop graph's state: small values only, checkpointed after every node.

The proposals, documents and observations live in the store; the state holds the iteration, the ids the next
node works on, the last verdict and outcome, the runs in flight and the approved proposals a pause holds back.
"""

from __future__ import annotations

from typing import TypedDict


class LoopState(TypedDict, total=False):
    """What the graph checkpoints: small values only.

    Attributes:
        iteration: the loop's round (proposals made in one ``propose`` share it).
        proposal_ids: the proposals the next node works on (to review, or released to dispatch).
        verdict: the last review's or hold's verdict (``approve``, ``reject``, ``stop``...), or empty.
        outcome: why the loop ended (``finished``, ``stopped``), or empty while it runs.
        in_flight: proposals dispatched whose observation is not stored yet.
        held: proposals approved but held back by a pause; dispatched after it.
        observed: the store's observation count after the last ingest (the high-water mark).
    """

    iteration: int
    proposal_ids: list[str]
    verdict: str
    outcome: str
    in_flight: list[str]
    held: list[str]
    observed: int
