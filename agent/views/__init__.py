"""Views of a session read from its store, never written: the report page, its figures, sessions compared.

Values and self-contained HTML, not terminal markup; the CLI (:mod:`agent.cli_report`) prints and writes them.
"""

from agent.views.compare import comparable, compare_html
from agent.views.data import Belief, SessionData, belief, load_session
from agent.views.report import report_html, session_figures, write_pngs

__all__ = [
    "Belief",
    "SessionData",
    "belief",
    "comparable",
    "compare_html",
    "load_session",
    "report_html",
    "session_figures",
    "write_pngs",
]
