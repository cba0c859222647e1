"""The session file's ``tiled`` section: what it accepts, where runs go, and that the key stays secret."""

from __future__ import annotations

import pytest

from closedloop import SpecError, spec_from_dict
from closedloop.changes import canonical_json
from closedloop.tiled import TiledSpec
from tests.conftest import beamline_session


@pytest.mark.parametrize(
    ("url", "container"),
    [
        ("http://localhost:8000", "http://localhost:8000/api/v1/metadata"),
        ("http://localhost:8000/", "http://localhost:8000/api/v1/metadata"),
        ("https://tiled.example.org/api", "https://tiled.example.org/api/v1/metadata"),
        ("https://tiled.example.org/api/v1/", "https://tiled.example.org/api/v1/metadata"),
        ("http://h:1/api/v1/metadata/bl7/raw/", "http://h:1/api/v1/metadata/bl7/raw"),
    ],
)
def test_runs_go_into_the_container_the_url_names(url: str, container: str) -> None:
    assert TiledSpec(url=url).metadata_url() == container


@pytest.mark.parametrize(
    ("tiled", "message"),
    [
        ({"url": "ftp://localhost"}, "tiled.url: 'ftp://localhost' is not an http(s) URL"),
        ({"url": "localhost:8000"}, "tiled.url: 'localhost:8000' is not an http(s) URL"),
        ({"url": "http://h:1/?x=1"}, "tiled.url: 'http://h:1/?x=1' is not an http(s) URL"),
        ({"url": "http://h:1", "api_key": " k"}, "tiled.api_key: must be non-empty printable text"),
        ({"url": "http://h:1", "timeout": 0}, "tiled.timeout: Input should be greater than 0"),
        ({"url": "http://h:1", "token": "k"}, "tiled.token: unknown key"),
        ({"api_key": "k"}, "tiled.url: required but missing"),
    ],
)
def test_bad_input_names_the_field(tiled: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as raised:
        spec_from_dict(beamline_session(tiled=tiled))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_api_key_is_used_but_never_shown_or_stored() -> None:
    spec = spec_from_dict(beamline_session(tiled={"url": "http://h:1", "api_key": "s3cret-key"}))
    assert spec.tiled is not None and spec.tiled.api_key is not None
    assert spec.tiled.api_key.get_secret_value() == "s3cret-key"
    assert "s3cret-key" not in repr(spec)
    assert "s3cret-key" not in canonical_json(spec)  # what the session's store records


def test_no_tiled_section_means_no_tiled() -> None:
    assert spec_from_dict(beamline_session()).tiled is None
