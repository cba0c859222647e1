"""CurveZMQ keys for a session's control channel, kept in the session folder.

``DIR/keys`` holds the server's key pair (``server.key``, ``server.key_secret``) and one pair per client
(``<name>.key``, ``<name>.key_secret``); ``DIR/keys/authorized`` holds the client public keys the server admits.
Secret key files are readable by their owner only.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import zmq
import zmq.auth

from closedloop.errors import SessionError, SpecError

KEYS_DIR = "keys"
AUTHORIZED_DIR = "authorized"


def make_keys(folder: Path, name: str = "client") -> dict[str, Path]:
    """Make CurveZMQ keys for a session folder: the server's pair (once) and a client pair named ``name``.

    The client's public key is copied into ``keys/authorized``, which is what the server admits; give the client's
    secret key file to the operator who connects from elsewhere, and delete a public key there to shut one out.

    Returns:
        ``{"server": public key file, "client": secret key file, "authorized": its admitted public key}``.

    Raises:
        SpecError: ``name`` is not a plain name.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or name == "server":
        raise SpecError(f"keys.name: {name!r} must be a plain name (letters, digits, _ . -), not 'server'")
    keys = Path(folder) / KEYS_DIR
    authorized = keys / AUTHORIZED_DIR
    authorized.mkdir(parents=True, exist_ok=True)
    if not (keys / "server.key_secret").exists():
        zmq.auth.create_certificates(keys, "server")
    public, secret = (Path(p) for p in zmq.auth.create_certificates(keys, name))
    for path in (keys / "server.key_secret", secret):
        path.chmod(0o600)
    shutil.copyfile(public, authorized / public.name)
    return {"server": keys / "server.key", "client": secret, "authorized": authorized / public.name}


def load_server_keys(keys: Path) -> tuple[bytes, bytes]:
    """The server's public and secret keys from ``keys``.

    Raises:
        SessionError: there are no server keys, or no client is admitted.
    """
    secret_file = keys / "server.key_secret"
    authorized = keys / AUTHORIZED_DIR
    if not secret_file.exists() or not any(authorized.glob("*.key")):
        raise SessionError(
            "the control channel off loopback needs CurveZMQ keys, and there are none in " + str(keys),
            f"make them with: closedloop keys {keys.parent}",
        )
    public, secret = zmq.auth.load_certificate(secret_file)
    if secret is None:
        raise SessionError(f"{secret_file}: holds no secret key", f"make new keys with: closedloop keys {keys.parent}")
    return public, secret


def client_curve(sock: zmq.Socket[bytes], keys: Path, name: str, server_key: str) -> None:
    """Set a client socket up for CurveZMQ if ``keys`` holds ``<name>.key_secret``; without it the socket stays plain,
    and a CurveZMQ server will not answer it."""
    secret_file = keys / f"{name}.key_secret"
    if not secret_file.exists():
        return
    public, secret = zmq.auth.load_certificate(secret_file)
    if secret is None:
        return
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_key.encode()
