"""planners is pure math: importing it never pulls in Bluesky, ophyd-async, LangGraph, ZeroMQ or agent."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ["bluesky", "ophyd", "ophyd_async", "langgraph", "zmq", "instruments", "agent", "simulators"]


def test_planners_import_stays_pure():
    code = (
        "import sys, planners, planners.registry\n"
        f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"planners imported {out.stdout.strip()}"
