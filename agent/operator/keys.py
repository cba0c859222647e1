"""CurveZMQ keys for a session's control channel, kept in the session folder, and who each key proves its holder is.

``DIR/keys`` (readable by its owner only) holds the server's key pair (``server.key``, ``server.key_secret``), the
session owner's client pair (``owner.key``, ``owner.key_secret``) and one pair per key the owner issued
(``<name>.key``, ``<name>.key_secret``); ``DIR/keys/authorized`` holds the client public keys the server admits,
each named after its holder. :func:`ensure_keys` makes the server's and the owner's pairs the first time a session
serves its channel, so the owner's own commands need nothing set up; :func:`make_keys` issues a key to someone
else. Secret key files are readable by their owner only.

:class:`KeyAuthenticator` admits exactly the public keys in ``authorized`` (read again at every connection, so a
key deleted there is refused from the next connection on) and gives each connection the key's name as its ZAP
User-Id: ``owner`` for the owner's key, the name given to ``closedloop keys --name`` for an issued one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from agent.store import SessionFolder
from closedloop.errors import SessionError, SpecError

AUTHORIZED_DIR = "authorized"
OWNER = "owner"
"""The name (and ZAP User-Id) of the session owner's own client key."""
SERVER = "server"
_RESERVED = frozenset({OWNER, SERVER})


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # made by an older version, or under a loose umask
    return path


def _make_pair(keys: Path, name: str) -> tuple[Path, Path]:
    """A new key pair ``keys/<name>.key`` and ``keys/<name>.key_secret`` (the secret readable by its owner only)."""
    public, secret = (Path(p) for p in zmq.auth.create_certificates(keys, name))
    secret.chmod(0o600)
    return public, secret


def ensure_keys(folder: Path) -> Path:
    """Make the keys a session's channel needs, where they are missing: the server's pair and the owner's client
    pair (admitted); make ``keys`` and ``keys/authorized`` readable by their owner only, and every secret key file.

    Returns:
        the keys folder.

    Raises:
        SessionError: the keys folder cannot be made or its modes set.
    """
    keys = SessionFolder(folder).keys_dir
    try:
        _private_dir(keys)
        authorized = _private_dir(keys / AUTHORIZED_DIR)
        if not (keys / f"{SERVER}.key_secret").exists():
            _make_pair(keys, SERVER)
        if not (keys / f"{OWNER}.key_secret").exists() or not (authorized / f"{OWNER}.key").exists():
            public, _ = _make_pair(keys, OWNER)
            shutil.copyfile(public, authorized / public.name)
        for secret in keys.glob("*.key_secret"):
            secret.chmod(0o600)
    except OSError as exc:
        raise SessionError(f"{keys}: cannot make the control channel's keys ({exc.strerror or exc})") from None
    return keys


def make_keys(folder: Path, name: str = "client") -> dict[str, Path]:
    """Issue a CurveZMQ client key named ``name`` for a session folder (making the server's and owner's first).

    The client's public key is copied into ``keys/authorized``, which is what the server admits; give the client's
    secret key file to the operator, and delete the public key there to shut them out. Requests made with the key
    are recorded under ``name``, whatever name they give.

    Returns:
        ``{"server": public key file, "client": secret key file, "authorized": its admitted public key}``.

    Raises:
        SpecError: ``name`` is not a plain name, or is ``server`` or ``owner``.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or name in _RESERVED:
        raise SpecError(f"keys.name: {name!r} must be a plain name (letters, digits, _ . -), not 'server' or 'owner'")
    keys = ensure_keys(folder)
    public, secret = _make_pair(keys, name)
    shutil.copyfile(public, keys / AUTHORIZED_DIR / public.name)
    return {"server": keys / f"{SERVER}.key", "client": secret, "authorized": keys / AUTHORIZED_DIR / public.name}


def load_server_keys(keys: Path) -> tuple[bytes, bytes]:
    """The server's public and secret keys from ``keys``.

    Raises:
        SessionError: there are no server keys.
    """
    secret_file = keys / f"{SERVER}.key_secret"
    try:
        public, secret = zmq.auth.load_certificate(secret_file)
    except (OSError, ValueError):
        public, secret = b"", None
    if secret is None:
        raise SessionError(f"{secret_file}: holds no secret key", f"make new keys with: closedloop keys {keys.parent}")
    return public, secret


def admitted(keys: Path) -> dict[bytes, str]:
    """The admitted client public keys (Z85) and the name each stands for (its file name in ``keys/authorized``)."""
    names: dict[bytes, str] = {}
    for path in sorted((keys / AUTHORIZED_DIR).glob("*.key")):
        with contextlib.suppress(OSError, ValueError):
            public, _ = zmq.auth.load_certificate(path)
            names[public] = path.stem
    return names


class KeyAuthenticator(ThreadAuthenticator):
    """A ZAP handler (in its own thread) that admits the public keys in ``keys/authorized`` and sets each
    connection's User-Id to the admitted key's name.

    Args:
        context: the ZeroMQ context of the server's sockets.
        keys: the session's keys folder.
    """

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], keys: Path) -> None:
        super().__init__(context)
        self.keys = keys

    def start(self) -> None:
        """Start the handler and admit by the keys folder."""
        super().start()
        self.configure_curve_callback(domain="*", credentials_provider=self)

    def callback(self, domain: str, key: bytes) -> bool:
        """Whether the Z85 public ``key`` is admitted (pyzmq's credentials-provider hook)."""
        return key in admitted(self.keys)

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The admitted key's name ("" if it was removed during the handshake; the server then does nothing)."""
        return admitted(self.keys).get(z85.encode(client_public_key), "")


def client_key(keys: Path, name: str | None = None) -> Path | None:
    """The secret key file a client presents: ``keys`` itself when it is a file; else ``keys/<name>.key_secret``;
    with no name the owner's, or ``client``'s, or the one client secret key there. None when there is none this
    account can read."""
    try:
        if keys.is_file():
            return keys
        if name is not None:
            candidates = [keys / f"{name}.key_secret"]
        else:
            found = [p for p in sorted(keys.glob("*.key_secret")) if p.stem != SERVER]
            candidates = [keys / f"{OWNER}.key_secret", keys / "client.key_secret", *(found if len(found) == 1 else [])]
        return next((p for p in candidates if p.is_file() and os.access(p, os.R_OK)), None)
    except OSError:  # a folder this account may not read: no key
        return None


def client_curve(sock: zmq.Socket[bytes], keys: Path, name: str | None, server_key: str) -> Path | None:
    """Set a client socket up for CurveZMQ with :func:`client_key`'s key; without one the socket stays plain, and
    the server will not answer it.

    Returns:
        the secret key file used, or None.
    """
    secret_file = client_key(keys, name)
    if secret_file is None:
        return None
    try:
        public, secret = zmq.auth.load_certificate(secret_file)
    except (OSError, ValueError):
        return None
    if secret is None:
        return None
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_key.encode()
    return secret_file
