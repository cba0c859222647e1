"""Everything that touches Bluesky: the executor that owns the RunEngine, the devices, the plan, ingestion, the
safety gate."""

from instruments.devices import connect_devices, is_device, make_devices, resolve_device
from instruments.executor import InProcessExecutor
from instruments.ingest import observation_from_documents
from instruments.plans import measure_point, plan_for, scan_point
from instruments.protocols import DocumentSink, EventSink, Executes, RunRecord, is_transient
from instruments.run_engine import build_run_engine
from instruments.safety import check_setpoints, gate
from instruments.writer import DocumentWriter, document_writer, json_document

__all__ = [
    "DocumentSink",
    "DocumentWriter",
    "EventSink",
    "Executes",
    "InProcessExecutor",
    "RunRecord",
    "build_run_engine",
    "check_setpoints",
    "connect_devices",
    "document_writer",
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
