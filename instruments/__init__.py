"""Everything that touches Bluesky: the executor that owns the RunEngine, the devices, the plan, ingestion, the
safety gate."""

from instruments.devices import connect_devices, is_device, make_devices, resolve_device
from instruments.executor import InProcessExecutor, build_run_engine, json_document
from instruments.ingest import observation_from_documents
from instruments.plans import measure_point, plan_for, scan_point
from instruments.protocols import DocumentSink, EventSink, Executes, RunRecord, is_transient
from instruments.safety import check_setpoints, gate

__all__ = [
    "DocumentSink",
    "EventSink",
    "Executes",
    "InProcessExecutor",
    "RunRecord",
    "build_run_engine",
    "check_setpoints",
    "connect_devices",
    "gate",
    "is_device",
    "is_transient",
    "json_document",
    "make_devices",
    "measure_point",
    "observation_from_documents",
    "plan_for",
    "resolve_device",
    "scan_point",
]
