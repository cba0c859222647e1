"""The ``instrument.queueserver`` section: its defaults, its checks, and 'exactly one source' in InstrumentSpec."""

from __future__ import annotations

import pytest

from closedloop.errors import SpecError
from closedloop.queueserver import QueueServerSpec
from closedloop.spec import spec_from_dict


def _session(instrument: dict) -> dict:
    return {
        "variables": {"pitch1": {"bounds": [-1.5, 1.5], "device": "m1"}},
        "objectives": {"flux": {"field": "det-flux"}},
        "budget": {"experiments": 3},
        "instrument": instrument,
    }


def test_a_queueserver_instrument_loads_with_its_defaults() -> None:
    spec = spec_from_dict(_session({"queueserver": {"detectors": ["det"], "control_address": "tcp://qs:60615"}}))
    qs = spec.instrument.queueserver
    assert isinstance(qs, QueueServerSpec)
    assert (qs.control_address, qs.documents_address) == ("tcp://qs:60615", "tcp://localhost:5568")
    assert (qs.plan, qs.serializer, qs.user_group, qs.poll_interval) == ("auto", "json", "primary", 0.05)


@pytest.mark.parametrize(
    ("instrument", "message"),
    [
        ({"simulator": "beamline", "queueserver": {"detectors": ["det"]}}, "exactly one of 'simulator', 'factory' or"),
        ({"options": {}}, "exactly one of 'simulator', 'factory' or 'queueserver'"),
        ({"queueserver": {}}, "instrument.queueserver.detectors: required but missing"),
        ({"queueserver": {"detectors": []}}, "instrument.queueserver.detectors: List should have at least 1 item"),
        ({"queueserver": {"detectors": ["det"], "control_address": "localhost:60615"}}, "control_address: 'local"),
        ({"queueserver": {"detectors": ["det"], "serializer": "pickle"}}, "instrument.queueserver.serializer: "),
        ({"queueserver": {"detectors": ["det"], "plan": "my plan"}}, "instrument.queueserver.plan: 'my plan' is not"),
        ({"queueserver": {"detectors": ["det"], "timeout": 0}}, "instrument.queueserver.timeout: "),
        ({"queueserver": {"detectors": ["det"], "adress": "x"}}, "instrument.queueserver.adress: unknown key"),
    ],
)
def test_bad_queueserver_sections_name_the_field(instrument: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        spec_from_dict(_session(instrument))
