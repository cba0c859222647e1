"""Store URLs: only PostgreSQL ones are accepted, and a password never reaches a message (no server needed)."""

from __future__ import annotations

import pytest

from agent.store.postgres import redact, store_error
from closedloop.errors import SpecError
from closedloop.spec import check_store_url, spec_from_dict
from tests.conftest import beamline_session


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ann:pa55@db.example.org:5433/lab", "postgresql://ann:***@db.example.org:5433/lab"),
        ("postgresql://ann:p%40ss@db/lab?sslmode=require", "postgresql://ann:***@db/lab?sslmode=require"),
        ("postgresql://db/lab?user=ann&password=pa55", "postgresql://db/lab?user=ann&password=***"),
        ("postgresql://ann@db/lab", "postgresql://ann@db/lab"),
    ],
)
def test_redact_hides_the_password_and_keeps_the_rest(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_a_store_error_hides_the_password_in_the_cause_too() -> None:
    error = store_error("postgresql://ann:pa55@db/lab", "cannot connect", RuntimeError("auth failed for pa55\nretry"))
    assert str(error).startswith("store postgresql://ann:***@db/lab: cannot connect (auth failed for *** retry)")
    assert "pa55" not in str(error) and "\n" not in str(error)


@pytest.mark.parametrize("url", ["postgresql://db/lab", "postgres://ann:x@db:5432/lab", "POSTGRESQL://db/lab"])
def test_postgresql_urls_are_accepted(url: str) -> None:
    assert check_store_url(url) == url
    assert spec_from_dict(beamline_session(store=url)).store == url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://ann:pa55@db/lab", "got a mysql:// URL"),
        ("sqlite:///tmp/x.sqlite", "got a sqlite:// URL"),
        ("db.example.org/lab", "got no URL"),
        ("postgresql://", "got a postgresql:// URL"),
    ],
)
def test_other_urls_are_one_line_naming_store_without_the_url(url: str, says: str) -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_dict(beamline_session(store=url))
    message = str(caught.value)
    assert message.startswith("session: store: must be a postgresql:// URL") and says in message
    assert "pa55" not in message and "\n" not in message
