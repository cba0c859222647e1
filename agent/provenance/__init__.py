"""Every session a reproducible, shareable artifact: lineage kept as it runs, export to an RO-Crate bundle, replay
of the planner's proposals from a bundle, warm start from an earlier session, and the list of sessions in a folder.

Others may use the names below; the modules' other names are theirs.
"""

from agent.provenance.lineage import note_proposals, record_build, record_predictions, software_versions

__all__ = ["note_proposals", "record_build", "record_predictions", "software_versions"]
