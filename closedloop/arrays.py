"""The ``arrays`` section of a session file: which array readings are written to HDF5 files, not into documents.

A detector that reads an image in every event (a soft-signal camera, an ``ophyd.sim`` image signal) would put the
whole frame, as JSON, into every event of the run file, the store, Tiled and the 0MQ stream. With this section,
such a field goes to an HDF5 file in the session's ``runs/`` folder as the run streams, and the event holds a
reference to it (``stream_resource`` and ``stream_datum`` documents, as ophyd-async's file-writing detectors make).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_EXTERNAL_ABOVE = 1000
"""Arrays with more elements than this go to HDF5 files unless the session file says otherwise."""


class ArraysSpec(BaseModel):
    """Where array readings are kept.

    Attributes:
        external_above: an event field whose descriptor declares an array of more elements than this (a 32 x 32
            frame has 1,024) is written to ``runs/<proposal id>-<run uid>.<stream>.h5`` and referenced from the
            event, not written into it; reducers (``instruments.reducers:frame_sum``) and Tiled read it from
            there. ``null`` keeps every array in the documents. Fields a detector already writes to its own
            files (ophyd-async's area detectors) are left as they are.
    """

    model_config = ConfigDict(extra="forbid")

    external_above: int | None = Field(default=DEFAULT_EXTERNAL_ABOVE, ge=0, le=2**40, strict=True)
