"""A session bundle: the RO-Crate folder (or ``.zip``) that ``closedloop export`` writes, and reading one back.

Layout (every path relative to the crate's root)::

    ro-crate-metadata.json   the crate: every file below with its sha256 and size
    bundle.json              format version, the session's name and id, when and by which closedloop it was exported
    SESSION.md               the card, for people; convergence.png its plot
    session.yaml             the session file as given
    store.sqlite             the session's store, a consistent copy (a PostgreSQL-kept session's rows too)
    observations.csv         one row per observation with its lineage (the columns of ``closedloop results``);
    observations.parquet     the same as Parquet
    decisions.json           every decision; audit.json: the audit trail
    environment.json         the software versions, the planner's builds, this host's platform
    runs/<proposal>.jsonl    every run's documents (and HDF5 files of large arrays)

:func:`open_bundle` checks a bundle before anything reads it: the crate's metadata is there, its format is one this
closedloop reads, and every file matches its checksum (none missing, none added).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.store.backends import recorded_spec
from agent.store.layout import STORE_FILE
from agent.store.sql import SqlStore
from agent.store.sqlite import SessionStore
from closedloop.errors import SessionError
from closedloop.spec import SessionSpec

#: The bundle format this closedloop writes and reads; a bundle of a newer one is refused.
FORMAT = 1
METADATA = "ro-crate-metadata.json"
MANIFEST = "bundle.json"
STORE = STORE_FILE  # the bundle keeps the store and the session file under the session folder's names


class BundleError(SessionError):
    """A bundle that is missing, truncated, altered or of a newer format; the message names the file."""


class BundleAltered(BundleError):
    """A bundle whose files no longer match its crate's checksums (one altered, missing or added)."""


def sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def files_under(root: Path) -> list[str]:
    """Every file under ``root`` as a POSIX path relative to it, sorted."""
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


@contextlib.contextmanager
def open_bundle(path: Path) -> Iterator[Path]:
    """The root of a checked bundle (a folder, or a ``.zip`` unpacked into a temporary folder removed after).

    Raises:
        BundleError: the bundle is missing or unreadable, is no closedloop bundle, is of a newer format, or a file
            does not match its checksum, is missing or was added; the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise BundleError(f"{path}: no such bundle")
    with contextlib.ExitStack() as stack:
        root = path
        if path.is_file():
            unpacked = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="closedloop-bundle-")))
            try:
                with zipfile.ZipFile(path) as archive:
                    for member in archive.namelist():
                        target = (unpacked / member).resolve()
                        if not target.is_relative_to(unpacked.resolve()):
                            raise BundleError(f"{path}: {member}: a path outside the bundle")
                    archive.extractall(unpacked)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise BundleError(f"{path}: not a readable zip ({exc})", "export the session again") from None
            root = unpacked
        check_bundle(root, shown=path)
        yield root


def check_bundle(root: Path, shown: Path | None = None) -> dict[str, Any]:
    """Check an unpacked bundle against its crate's checksums and its format; returns its manifest (``bundle.json``).

    Raises:
        BundleError: as :func:`open_bundle` says.
    """
    shown = shown or root
    try:
        graph = json.loads((root / METADATA).read_text(encoding="utf-8"))["@graph"]
    except FileNotFoundError:
        raise BundleError(f"{shown}: has no {METADATA} (not a closedloop bundle, or truncated)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{shown}/{METADATA}: unreadable ({exc})") from None
    listed = {
        str(entity["@id"]): entity
        for entity in graph
        if isinstance(entity, dict) and entity.get("@type") == "File" and "sha256" in entity
    }
    for name in files_under(root):
        if name == METADATA:
            continue
        if name not in listed:
            raise BundleAltered(f"{shown}: {name}: not in the crate's metadata (added after export)")
    for name, entity in sorted(listed.items()):
        file = root / name
        if not file.is_file():
            raise BundleAltered(f"{shown}: {name}: missing (truncated?)")
        if sha256(file) != entity["sha256"]:
            raise BundleAltered(f"{shown}: {name}: does not match its checksum (altered after export)")
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        version = int(manifest["format"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{shown}/{MANIFEST}: unreadable ({exc})") from None
    if version > FORMAT:
        raise BundleError(
            f"{shown}/{MANIFEST}: format {version} is newer than this closedloop reads ({FORMAT})",
            "upgrade closedloop",
        )
    return dict(manifest)


def publish(stage: Path, out: Path) -> None:
    """Move a finished bundle from its temporary ``stage`` folder to ``out`` at once: renamed when ``out`` is a
    folder, zipped beside it under a temporary name and renamed when ``out`` ends in ``.zip``.

    Raises:
        OSError: ``out`` cannot be written (the stage and any temporary file are removed).
    """
    try:
        if out.suffix.lower() != ".zip":
            stage.rename(out)
            return
        partial = out.with_name(f".{out.name}.partial")
        try:
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name in files_under(stage):
                    archive.write(stage / name, name)
            partial.rename(out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def bundle_store(path: Path) -> Iterator[tuple[SessionSpec, SqlStore, dict[str, Any]]]:
    """The spec and store of a checked bundle (a temporary copy of its store: the bundle is never written), and
    its root folder's path as ``{"root": ...}``.

    Raises:
        BundleError: the bundle is refused (see :func:`~agent.provenance.bundle.open_bundle`).
    """
    with open_bundle(path) as root, tempfile.TemporaryDirectory(prefix="closedloop-replay-") as scratch:
        copy = Path(scratch) / STORE
        shutil.copyfile(root / STORE, copy)
        store = SessionStore(copy)
        try:
            yield recorded_spec(store), store, {"root": root}
        finally:
            store.close()
