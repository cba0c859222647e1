"""Everything that touches Bluesky: the executor that owns the RunEngine, the plan, ingestion, the safety gate."""

from instruments.executor import InProcessExecutor, build_run_engine
from instruments.ingest import observation_from_documents
from instruments.plans import measure_point, plan_for, scan_point
from instruments.protocols import DocumentSink, Executes, RunRecord
from instruments.safety import check_setpoints

__all__ = [
    "DocumentSink",
    "Executes",
    "InProcessExecutor",
    "RunRecord",
    "build_run_engine",
    "check_setpoints",
    "measure_point",
    "observation_from_documents",
    "plan_for",
    "scan_point",
]
