"""Views of a session read from its store, never written: status, results, the audit trail, the report page, its
figures, sessions compared; and how numbers, checkpoints and events read at a terminal.

Values and self-contained HTML; the CLI (:mod:`agent.cli`) prints and writes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent._lazy import lazy_exports

_EXPORTS = {
    "action": "audit",
    "audit_trail": "audit",
    "belief_line": "belief",
    "numeric_variables": "belief",
    "rebuilt_belief_line": "belief",
    "comparable": "compare",
    "compare_html": "compare",
    "Belief": "data",
    "SessionData": "data",
    "load_session": "data",
    "audit_table": "display",
    "checkpoint_table": "display",
    "event_line": "display",
    "event_lines": "display",
    "fmt": "display",
    "folder_units": "numbers",
    "number": "numbers",
    "point": "numbers",
    "quantity": "numbers",
    "units_of": "numbers",
    "report_html": "report",
    "session_figures": "report",
    "write_pngs": "report",
    "READ_BACK": "results",
    "TRAILING": "results",
    "as_csv": "results",
    "session_results": "results",
    "PLANNER_WAITS": "status",
    "SessionState": "status",
    "Tally": "status",
    "folder_spec": "status",
    "pareto_front": "status",
    "session_store": "status",
    "summarize": "status",
    "summarize_remote": "status",
    "summarize_store": "status",
    "summary": "status",
    "suspended_key": "status",
    "waiting_text": "status",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from agent.views.audit import action, audit_trail
    from agent.views.belief import belief_line, numeric_variables, rebuilt_belief_line
    from agent.views.compare import comparable, compare_html
    from agent.views.data import Belief, SessionData, load_session
    from agent.views.display import audit_table, checkpoint_table, event_line, event_lines, fmt
    from agent.views.numbers import folder_units, number, point, quantity, units_of
    from agent.views.report import report_html, session_figures, write_pngs
    from agent.views.results import READ_BACK, TRAILING, as_csv, session_results
    from agent.views.status import (
        PLANNER_WAITS,
        SessionState,
        Tally,
        folder_spec,
        pareto_front,
        session_store,
        summarize,
        summarize_remote,
        summarize_store,
        summary,
        suspended_key,
        waiting_text,
    )
