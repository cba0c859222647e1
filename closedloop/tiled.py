"""The ``tiled`` section of a session file: the Tiled server every run's documents are written to.

With it, each run of the session is written, as it happens, to a Tiled server (as a ``BlueskyRun`` container
named by the run's uid), and each observation can link to its entry there. Writing to Tiled needs the
``closedloop[tiled]`` extra; a Tiled server that is down never stops a run (the failure is logged).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class TiledSpec(BaseModel):
    """Where the run documents go in Tiled, and how to authenticate.

    Attributes:
        url: the Tiled server (``http://localhost:8000``) or a container on it
            (``http://tiled.example.org/api/v1/metadata/bl7/raw``); runs are written into it.
        api_key: a Tiled API key allowed to write there. Kept secret: it is shown as ``**********`` and never
            stored with the session's spec. Left out, Tiled's client reads the ``TILED_API_KEY`` environment
            variable, as Tiled documents.
        timeout: seconds each request to the server may take; when the session ends, runs still queued are
            written while the server keeps answering, and given up on once it took nothing for this long.
    """

    model_config = ConfigDict(extra="forbid")

    url: str
    api_key: SecretStr | None = None
    timeout: float = Field(default=10.0, gt=0, le=600, allow_inf_nan=False)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"'{value}' is not an http(s) URL such as 'http://localhost:8000'")
        return value

    @field_validator("api_key")
    @classmethod
    def _usable_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            key = value.get_secret_value()
            if not key or not key.isprintable() or key != key.strip():
                raise ValueError("must be non-empty printable text without surrounding spaces")
        return value

    def metadata_url(self) -> str:
        """The URL of the container runs are written into, on Tiled's metadata endpoint (no trailing slash).

        ``http://host:8000`` becomes ``http://host:8000/api/v1/metadata``; a URL that already names
        ``/metadata/...`` is kept (as Tiled's own client reads a URL).
        """
        parts = urlsplit(self.url)
        path = parts.path.rstrip("/")
        if "/metadata" not in path:
            if "/api" not in path:
                path += "/api/v1"
            elif "/v1" not in path:
                path += "/v1"
            path += "/metadata"
        return parts._replace(path=path).geturl()
