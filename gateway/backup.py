"""Backups of a gateway instance and their restore; no flask.

**SQLite** (the embedded store). :func:`backup_sqlite` writes one archive (a gzip'd tar, 0600)
holding everything a restore needs: the store file, the disclosure ledger's own file (see
:func:`gateway.store.ledger_database_path`), the instance's ``secret_key`` file when the secret
comes from it (without that key pseudonyms change, and the LTI signing keys and SIS source secrets
encrypted under it cannot be read), and a manifest: format, gateway version, schema revision,
each district's ledger chain head (seq and hash), and every file's SHA-256.

Both files are copied with SQLite's online backup API inside **one read transaction** on a
connection that has the ledger attached: WAL readers block no one, so the server goes on serving
and importing meanwhile, and the copies are the snapshots that transaction took. The store's
snapshot is taken first and the ledger's right after: an import (one transaction on the store) is
in the copy whole or not at all, and a ledger entry appended between the two snapshots is in the
ledger copy though the store copy predates it, which is harmless (the ledger is append-only; the
reverse order could lose the record of a disclosure).

:func:`restore_sqlite` refuses an instance that holds data (unless forced), extracts into a
private temporary folder beside the store, checks each file against the manifest, checks that
the secret key in effect is the one the backup was made with, brings the schema up to date if
the archive is older, verifies every district's chain and that it ends exactly at the manifest's
head (and contains externally kept heads, when given), and only then renames the files into
place.

**PostgreSQL** has its own tools: ``pg_dump -Fc`` (one consistent snapshot of the whole
database), with the ledger heads written elsewhere before the dump (``gateway ledger heads``) so
that a restored database is checked against heads that were not in the same dump; see
:func:`postgresql_procedure` and the README's "Backups".
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
import zlib
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gateway.errors import UsageError
from gateway.sharing import ledger
from gateway.store import LEDGER_SCHEMA, Database, ledger_database_path
from gateway.store.migrate import current_revision, head_revision, known_revision, upgrade_database
from gateway.store.models import District
from gateway.store.private import (PRIVATE_FILE_MODE, SQLITE_SIDE_FILE_SUFFIXES,
                                   create_private_file, sqlite_file_of)
from gateway.store.sharing import LedgerCheckpoint, LedgerEntry

FORMAT = "k12-gateway-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
STORE_NAME = "gateway.sqlite3"
LEDGER_NAME = "gateway-ledger.sqlite3"
SECRET_NAME = "secret_key"
SECRET_KEY_FILE = "secret_key"
"""The instance file holding the secret key when ``GATEWAY_SECRET_KEY`` is not set (see
:func:`gateway.create_app`)."""
# Pages copied per step of the backup API: progress is reported between steps (16 MiB at the
# default 4 KiB page).
PAGES_PER_STEP = 4096
# Fast gzip: a SQLite file still shrinks several times, and a backup of a large store should not
# spend minutes of CPU compressing while the server serves.
COMPRESS_LEVEL = 1
_CHUNK = 1024 * 1024
_FINGERPRINT_INFO = b"k12-gateway/backup/secret-key-fingerprint/v1"

Progress = Callable[[str], None]
"""Where a long backup or restore reports how far it got (the CLI prints to stderr)."""


class BackupError(UsageError):
    """A backup cannot be made as asked; the message says why."""


class RestoreError(UsageError):
    """A restore was refused; nothing was changed. The message says why, and that."""

    def __init__(self, description: str) -> None:
        super().__init__(f"{description}\nNothing was restored.")


def _quiet(_message: str) -> None:
    """Progress that goes nowhere."""


class _Meter:
    """Reports ``label: N% (x of y MB)`` at most once a second, and once at the end."""

    def __init__(self, progress: Progress, label: str, total: int) -> None:
        self.progress, self.label, self.total = progress, label, max(total, 1)
        self.last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if done < self.total and now - self.last < 1.0:
            return
        self.last = now
        self.progress(f"{self.label}: {min(100, done * 100 // self.total)}% "
                      f"({done / 1e6:.1f} of {self.total / 1e6:.1f} MB)")


# ----------------------------------------------------------------------------- shared pieces

@dataclasses.dataclass(frozen=True)
class ChainHead:
    """A district's ledger chain head: its last entry's seq and hash."""

    district: str
    seq: int
    hash: str

    def as_json(self) -> dict[str, Any]:
        """The head as ``gateway ledger heads --json`` and the manifest write it."""
        return {"district": self.district, "seq": self.seq, "hash": self.hash}


def read_chain_heads(session: Session) -> list[ChainHead]:
    """Every district's chain head, by district sourcedId."""
    names = dict(session.execute(select(District.id, District.sourced_id)).all())
    return [ChainHead(names.get(district_id, f"#{district_id}"), seq, digest)
            for district_id, (seq, digest) in ledger.chain_heads(session).items()]


def parse_heads(document: Any, source: str) -> list[ChainHead]:
    """Chain heads from ``gateway ledger heads --json`` output (a list) or a backup manifest (its
    ``ledger_heads``); UsageError naming ``source`` if the document is neither."""
    if isinstance(document, dict):
        document = document.get("ledger_heads")
    try:
        if not isinstance(document, list):
            raise TypeError
        heads = [ChainHead(str(item["district"]), int(item["seq"]), str(item["hash"]))
                 for item in document]
    except (TypeError, KeyError, ValueError) as error:
        raise UsageError(f"{source} is not a list of ledger heads ({{\"district\", \"seq\", "
                         f"\"hash\"}} each), as `gateway ledger heads --json` prints") from error
    return heads


def load_heads(path: str | os.PathLike[str]) -> list[ChainHead]:
    """The chain heads kept in the file ``path`` (see :func:`parse_heads`)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read {os.fspath(path)!r}: {error.strerror}") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{os.fspath(path)!r} is not JSON ({error})") from error
    return parse_heads(document, repr(os.fspath(path)))


def check_heads(session: Session, kept: Iterable[ChainHead], *,
                exact: bool) -> list[tuple[str, str]]:
    """What does not match between the store's ledger and heads kept before: for each kept head,
    the chain must reach it and hold that hash at that seq (``exact``: and end there). Returns
    (district, sentence) for each problem; empty when every head matches. Run
    :func:`gateway.sharing.ledger.verify_ledger` too: this checks where each chain ends, not that
    it is unbroken.
    """
    problems = []
    ids = dict(session.execute(select(District.sourced_id, District.id)).all())
    current = ledger.chain_heads(session)
    for head in kept:
        def problem(message: str) -> None:
            problems.append((head.district, f"district {head.district}: {message}"))

        district_id = ids.get(head.district)
        if district_id is None and head.district.startswith("#") and head.district[1:].isdigit():
            # A chain whose district row is gone is named by its id (see read_chain_heads).
            district_id = int(head.district[1:])
        if district_id is None:
            if head.seq:
                problem(f"not in this store, but its kept head is entry {head.seq}")
            continue
        seq, digest = current.get(district_id, (0, ledger.GENESIS))
        if seq < head.seq:
            problem(f"the ledger ends at entry {seq}, before the kept head (entry {head.seq}): "
                    "entries are missing")
        elif seq == head.seq:
            if digest != head.hash:
                problem(f"entry {seq} has another hash than the kept head's: the ledger differs "
                        "from the one kept")
        elif exact:
            problem(f"the ledger goes on to entry {seq}, past the recorded head (entry "
                    f"{head.seq})")
        else:
            found = _hash_at(session, district_id, head.seq)
            if found is None:
                problem(f"entry {head.seq} (the kept head) was pruned, so it cannot be checked: "
                        "keep newer heads")
            elif found != head.hash:
                problem(f"entry {head.seq} has another hash than the kept head's: the ledger "
                        "differs from the one kept")
    return problems


def _hash_at(session: Session, district_id: int, seq: int) -> str | None:
    """The hash of the district's entry ``seq``, from the entry or from a pruning checkpoint
    there; None when neither is left."""
    if seq == 0:
        return ledger.GENESIS
    for column in (LedgerEntry.hash, LedgerCheckpoint.hash):
        model = column.class_
        found = session.execute(select(column).where(model.district_id == district_id,
                                                     model.seq == seq)).scalar_one_or_none()
        if found is not None:
            return found
    return None


def secret_fingerprint(secret_key: str) -> str:
    """A one-way fingerprint of the secret key (HKDF-SHA256, its own label): tells whether two
    keys are the same without writing either into a manifest."""
    return HKDF(algorithm=hashes.SHA256(), length=16, salt=None,
                info=_FINGERPRINT_INFO).derive(secret_key.encode("utf-8")).hex()


def secret_key_from_instance(instance_path: str | os.PathLike[str], secret_key: str) -> bool:
    """Whether ``secret_key`` (the one in effect) is the instance folder's ``secret_key`` file,
    rather than ``GATEWAY_SECRET_KEY``."""
    key_file = Path(instance_path) / SECRET_KEY_FILE
    return key_file.is_file() and key_file.read_text().strip() == secret_key


def gateway_version() -> str:
    """The installed gateway's version."""
    try:
        return metadata.version("k12-gateway")
    except metadata.PackageNotFoundError:
        return "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_sqlite_side_files(path: Path) -> None:
    # A -wal left beside a replaced file would be replayed into it: remove them all.
    for suffix in SQLITE_SIDE_FILE_SUFFIXES:
        path.with_name(path.name + suffix).unlink(missing_ok=True)


# ------------------------------------------------------------------------------------ backup

def _copy_schema(source: sqlite3.Connection, schema: str, target: Path, label: str,
                 progress: Progress) -> None:
    """Copy the attached database ``schema`` of ``source`` (in its open read transaction) to the
    file ``target``, self-contained (rollback journal, no -wal beside it)."""
    page_size = source.execute(f"PRAGMA {schema}.page_size").fetchone()[0]
    create_private_file(target)
    destination = sqlite3.connect(target)
    try:
        meter = None

        def step(_status: int, remaining: int, total: int) -> None:
            nonlocal meter
            meter = meter or _Meter(progress, label, total * page_size)
            meter.update((total - remaining) * page_size)

        source.backup(destination, pages=PAGES_PER_STEP, progress=step, name=schema)
        destination.execute("PRAGMA journal_mode=DELETE")
    finally:
        destination.close()


class _CountingReader(io.RawIOBase):
    """A file read through while reporting how much of it has been read."""

    def __init__(self, file: BinaryIO, meter: _Meter) -> None:
        self.file, self.meter, self.done = file, meter, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.file.readinto(buffer)
        self.done += count
        self.meter.update(self.done)
        return count


def backup_sqlite(database: Database, out: str | os.PathLike[str], *,
                  instance_path: str | os.PathLike[str], secret_key: str, force: bool = False,
                  progress: Progress = _quiet) -> dict[str, Any]:
    """Write a backup archive of the SQLite store of ``database`` to ``out`` (0600), online
    (see the module's docstring); returns its manifest.

    ``secret_key``: the key in effect; the instance's key file goes into the archive when it is
    that key, else only the key's fingerprint does (it comes from ``GATEWAY_SECRET_KEY``, which
    the operator keeps with their other secrets).
    """
    store = sqlite_file_of(database.url)
    if store is None:
        raise BackupError("`gateway backup` copies a SQLite store; this one is "
                          f"{database.dialect}")
    if not store.is_file() or store.stat().st_size == 0:
        raise BackupError(f"there is no store at {store}: nothing to back up")
    out = Path(out)
    if out.exists() and not force:
        raise BackupError(f"{out} exists; choose another name, or pass --force to replace it")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a folder")
    # Private (mkdtemp makes it 0700), and beside the archive: the copies are as large as the
    # store and must not fill a small /tmp.
    work = Path(tempfile.mkdtemp(prefix=".gateway-backup-", dir=out.parent))
    partial = out.with_name(out.name + ".partial")
    try:
        copies = {STORE_NAME: work / STORE_NAME, LEDGER_NAME: work / LEDGER_NAME}
        with database.engine.connect() as connection, connection.begin():
            # The first read takes the store's snapshot, the heads the ledger's; the copies below
            # are those snapshots (the transaction stays open until both are done).
            try:
                revision = connection.exec_driver_sql(
                    "SELECT version_num FROM main.alembic_version").scalar()
            except Exception as error:
                raise BackupError(f"{store} has no gateway schema: nothing to back up") from error
            session = Session(bind=connection)
            heads = read_chain_heads(session)
            session.close()
            raw = connection.connection.driver_connection
            progress(f"copying the store {store}")
            _copy_schema(raw, "main", copies[STORE_NAME], "store", progress)
            progress(f"copying the ledger {ledger_database_path(str(store))}")
            _copy_schema(raw, LEDGER_SCHEMA, copies[LEDGER_NAME], "ledger", progress)
        from_instance = secret_key_from_instance(instance_path, secret_key)
        if from_instance:
            copies[SECRET_NAME] = create_private_file(work / SECRET_NAME)
            copies[SECRET_NAME].write_bytes((Path(instance_path) / SECRET_KEY_FILE).read_bytes())
        progress("computing checksums")
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "gateway_version": gateway_version(), "database": "sqlite",
            "migration_head": revision,
            "secret_key": {"source": "instance-file" if from_instance else "environment",
                           "fingerprint": secret_fingerprint(secret_key)},
            "ledger_heads": [head.as_json() for head in heads],
            "files": {name: {"bytes": path.stat().st_size, "sha256": _sha256(path)}
                      for name, path in copies.items()},
        }
        _write_archive(partial, manifest, copies, progress)
        os.replace(partial, out)
        _fsync_folder(out.parent)
        return manifest
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def _write_archive(path: Path, manifest: dict[str, Any], files: dict[str, Path],
                   progress: Progress) -> None:
    """The tar.gz at ``path`` (0600): the manifest first, then ``files``; synced to disk."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=COMPRESS_LEVEL) as archive:
            body = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
            archive.addfile(_member(MANIFEST_NAME, len(body)), io.BytesIO(body))
            total = sum(p.stat().st_size for p in files.values())
            meter = _Meter(progress, "writing the archive", total)
            done = 0
            for name, file in files.items():
                size = file.stat().st_size
                with open(file, "rb") as source:
                    reader = _CountingReader(source, meter)
                    reader.done = done
                    archive.addfile(_member(name, size), io.BufferedReader(reader, _CHUNK))
                done += size
        raw.flush()
        os.fsync(raw.fileno())


def _member(name: str, size: int) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.size, member.mode, member.mtime = size, PRIVATE_FILE_MODE, int(time.time())
    return member


# ----------------------------------------------------------------------------------- restore

@dataclasses.dataclass(frozen=True)
class DistrictChain:
    """One district's chain as verified after a restore."""

    district: str
    entries: int
    head_seq: int
    head_hash: str


@dataclasses.dataclass(frozen=True)
class Restored:
    """What a restore did."""

    manifest: dict[str, Any]
    store: Path
    ledger: Path
    secret_key_file: Path | None
    migrated_from: str | None
    revision: str
    chains: tuple[DistrictChain, ...]


def _holds_data(path: Path) -> list[str]:
    """The tables of the SQLite file ``path`` that hold rows (alembic's excepted); empty when
    the file is missing or has none."""
    if not path.is_file() or path.stat().st_size == 0:
        return []
    connection = sqlite3.connect(path)
    try:
        tables = [name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name != 'alembic_version' ORDER BY name")]
        return [name for name in tables
                if connection.execute(f'SELECT EXISTS (SELECT 1 FROM "{name}")').fetchone()[0]]
    except sqlite3.DatabaseError as error:
        return [f"(unreadable: {error})"]
    finally:
        connection.close()


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path,
                 meter: _Meter, done: int) -> str:
    """Write ``member`` to ``target`` (0600), returning its SHA-256."""
    source = archive.extractfile(member)
    if source is None:
        raise RestoreError(f"the archive's {member.name} is not a file")
    digest = hashlib.sha256()
    create_private_file(target)
    with open(target, "wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            done += len(chunk)
            meter.update(done)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _extract(archive_path: Path, work: Path, progress: Progress) -> dict[str, Any]:
    """Extract the archive into ``work``, checking every file against the manifest; returns the
    manifest."""
    allowed = {STORE_NAME, LEDGER_NAME, SECRET_NAME}
    manifest: dict[str, Any] | None = None
    seen: dict[str, str] = {}
    try:
        # Streamed ("r|gz"): read once, in order; the manifest comes first.
        with tarfile.open(archive_path, mode="r|gz") as archive:
            meter: _Meter | None = None
            done = 0
            for member in archive:
                if manifest is None:
                    if member.name != MANIFEST_NAME or not member.isfile() or member.size > _CHUNK:
                        raise RestoreError(f"{archive_path} is not a gateway backup (it does not "
                                           f"start with {MANIFEST_NAME})")
                    manifest = _parse_manifest(archive.extractfile(member).read(), archive_path)
                    total = sum(int(f.get("bytes", 0)) for f in manifest["files"].values())
                    meter = _Meter(progress, "extracting", total)
                    continue
                if (member.name not in allowed or member.name not in manifest["files"]
                        or member.name in seen or not member.isfile()):
                    raise RestoreError(f"{archive_path} holds an unexpected member "
                                       f"{member.name!r}: not a backup this gateway wrote")
                seen[member.name] = _read_member(archive, member, work / member.name, meter, done)
                done += member.size
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise RestoreError(f"{archive_path} is damaged or truncated, or could not be extracted "
                           f"({error})") from error
    if manifest is None:
        raise RestoreError(f"{archive_path} is empty: not a gateway backup")
    for name, expected in manifest["files"].items():
        if name not in seen:
            raise RestoreError(f"{archive_path} lacks {name}, which its manifest lists: the "
                               "archive is truncated or was altered")
        if seen[name] != expected.get("sha256"):
            raise RestoreError(f"{name} in {archive_path} does not match its checksum in the "
                               "manifest: the archive was damaged or altered")
    return manifest


def _parse_manifest(body: bytes, archive_path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RestoreError(f"the manifest of {archive_path} is not JSON") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RestoreError(f"{archive_path} is not a gateway backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise RestoreError(f"{archive_path} is a backup of format version "
                           f"{manifest.get('format_version')}, which this gateway does not read")
    files = manifest.get("files")
    if (not isinstance(files, dict) or STORE_NAME not in files or LEDGER_NAME not in files
            or not isinstance(manifest.get("secret_key"), dict)):
        raise RestoreError(f"the manifest of {archive_path} is incomplete")
    # Checked now, so that a malformed manifest is refused before anything else is done.
    parse_heads(manifest.get("ledger_heads"), f"the manifest of {archive_path}")
    return manifest


def _check_secret(manifest: dict[str, Any], work: Path, secret_key: str,
                  from_instance: bool) -> Path | None:
    """The restored secret key file (or None), after checking that the key the restored
    instance will use is the one the backup was made with."""
    expected = manifest["secret_key"].get("fingerprint")
    restored_file = work / SECRET_NAME if SECRET_NAME in manifest["files"] else None
    if restored_file is not None:
        restored = restored_file.read_text().strip()
        if secret_fingerprint(restored) != expected:
            raise RestoreError("the archive's secret_key does not match its manifest's "
                               "fingerprint: the archive was altered")
        if from_instance:
            return restored_file
    # The restored instance's key will be GATEWAY_SECRET_KEY (or, for an archive without a key
    # file, whatever the instance has now).
    if secret_fingerprint(secret_key) == expected:
        return None
    if restored_file is not None:
        raise RestoreError("GATEWAY_SECRET_KEY is set, and is not the key this backup was made "
                           "with: the restored instance would use it instead of the archive's "
                           "secret_key file. Unset it (or set the original key) and restore "
                           "again")
    raise RestoreError("this backup was made with GATEWAY_SECRET_KEY set, and the key in effect "
                       "now is another one: without the original key pseudonyms change and the "
                       "encrypted signing keys and SIS secrets cannot be read. Set "
                       "GATEWAY_SECRET_KEY to the original key and restore again")


def _verify_restored(database: Database, recorded: list[ChainHead], kept: list[ChainHead] | None,
                     progress: Progress) -> tuple[DistrictChain, ...]:
    """Verify every chain of the restored copy, and its heads against the manifest's (exactly)
    and against ``kept`` (reached)."""
    with database.session_scope() as session:
        for schema in ("main", LEDGER_SCHEMA):
            result = session.connection().exec_driver_sql(f"PRAGMA {schema}.quick_check").scalar()
            if result != "ok":
                raise RestoreError(f"the restored {schema} database is damaged ({result})")
        names = dict(session.execute(select(District.id, District.sourced_id)).all())
        chains = []
        problems = []
        for district_id in ledger.ledger_district_ids(session):
            label = names.get(district_id, f"#{district_id}")
            progress(f"verifying the ledger of district {label}")
            result = ledger.verify_ledger(session, district_id)
            problems += [f"district {label}: {p.message}" for p in result.problems]
            chains.append(DistrictChain(label, result.entries, result.head_seq, result.head_hash))
        problems += [message for _, message in check_heads(session, recorded, exact=True)]
        listed = {head.district for head in recorded}
        problems += [f"district {chain.district}: its ledger (head entry {chain.head_seq}) is "
                     "not in the manifest" for chain in chains
                     if chain.head_seq and chain.district not in listed]
        if kept:
            problems += [message for _, message in check_heads(session, kept, exact=False)]
    if problems:
        raise RestoreError("the restored ledger does not verify:\n  "
                           + "\n  ".join(problems[:20])
                           + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""))
    return tuple(chains)


def restore_sqlite(archive: str | os.PathLike[str], *, database_url: str,
                   instance_path: str | os.PathLike[str], secret_key: str, force: bool = False,
                   kept_heads: list[ChainHead] | None = None,
                   progress: Progress = _quiet) -> Restored:
    """Restore the backup ``archive`` into the SQLite store named by ``database_url`` (and the
    instance folder), which must be empty unless ``force``; see the module's docstring.
    ``secret_key``: the key in effect for the target instance; ``kept_heads``: chain heads kept
    apart, which the restored ledger must contain. Raises :class:`RestoreError` having changed
    nothing."""
    archive = Path(archive)
    store = sqlite_file_of(database_url)
    if store is None:
        raise RestoreError("`gateway restore` restores a SQLite store; for PostgreSQL follow "
                           "the pg_restore procedure in the README's \"Backups\"")
    if not archive.is_file():
        raise RestoreError(f"no archive at {archive}")
    instance = Path(instance_path)
    ledger_file = Path(ledger_database_path(str(store)))
    occupied = [f"{path.name} ({', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''})"
                for path in (store, ledger_file) if (tables := _holds_data(path))]
    if occupied and not force:
        raise RestoreError(f"the store at {store} is not empty: {'; '.join(occupied)} hold data. "
                           "Restore into an empty instance, or pass --force to replace it (stop "
                           "every gateway process using it first)")
    from_instance = secret_key_from_instance(instance, secret_key)
    store.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".gateway-restore-", dir=store.parent))
    try:
        progress(f"reading {archive}")
        manifest = _extract(archive, work, progress)
        secret_file = _check_secret(manifest, work, secret_key, from_instance)
        restored = Database(f"sqlite:///{work / STORE_NAME}")
        try:
            revision = current_revision(restored)
            migrated_from = None
            if revision is None or not known_revision(revision):
                raise RestoreError(f"the archive's store is at schema revision {revision}, "
                                   "which this gateway does not know: restore it with the "
                                   "gateway version that made it "
                                   f"({manifest.get('gateway_version')}) or a newer one")
            if revision != head_revision():
                progress(f"migrating the restored store from revision {revision} to "
                         f"{head_revision()}")
                migrated_from, revision = revision, upgrade_database(restored)
            recorded = parse_heads(manifest["ledger_heads"], f"the manifest of {archive}")
            chains = _verify_restored(restored, recorded, kept_heads, progress)
            with restored.engine.connect() as connection:
                # Fold the -wal files into the databases, so each file is whole on its own.
                connection.exec_driver_sql("PRAGMA main.wal_checkpoint(TRUNCATE)")
                connection.exec_driver_sql(f"PRAGMA {LEDGER_SCHEMA}.wal_checkpoint(TRUNCATE)")
        finally:
            restored.dispose()
        progress("moving the restored files into place")
        # Nothing was changed so far. The secret first, the store last: an interruption leaves
        # at worst a key and a ledger without a store, which the next restore reports as
        # occupied rather than a store without its ledger or key.
        moves = []
        if secret_file is not None:
            moves.append((secret_file, instance / SECRET_KEY_FILE))
        moves += [(work / LEDGER_NAME, ledger_file), (work / STORE_NAME, store)]
        for _, target in moves[-2:]:
            _remove_sqlite_side_files(target)
        for source, target in moves:
            os.replace(source, target)
            target.chmod(PRIVATE_FILE_MODE)
        _fsync_folder(store.parent)
        if secret_file is not None and instance != store.parent:
            _fsync_folder(instance)
        return Restored(manifest=manifest, store=store, ledger=ledger_file,
                        secret_key_file=instance / SECRET_KEY_FILE if secret_file else None,
                        migrated_from=migrated_from, revision=revision, chains=chains)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -------------------------------------------------------------------------------- PostgreSQL

def libpq_url(database_url: str) -> str:
    """``database_url`` as pg_dump and psql take it (no SQLAlchemy driver name; the password
    hidden, so that printing it leaks nothing)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=True)


def postgresql_procedure(database_url: str) -> str:
    """What to run instead of ``gateway backup`` on PostgreSQL (the README's procedure, with
    this database's address)."""
    url = libpq_url(database_url)
    return (
        "On PostgreSQL, back up with PostgreSQL's own tools (see the README's \"Backups\"):\n"
        "  1. gateway ledger heads --json > /elsewhere/heads-$(date +%F).json   "
        "# first, and kept apart from the dump\n"
        f"  2. pg_dump -Fc -f gateway-$(date +%F).dump '{url}'\n"
        "  3. keep GATEWAY_SECRET_KEY (or the instance folder's secret_key file) with your "
        "secrets\n"
        "Restore: pg_restore --no-owner -d NEW_DATABASE_URL gateway-DATE.dump, then with "
        "GATEWAY_DATABASE_URL set to it: gateway db upgrade && gateway ledger verify --heads "
        "heads-DATE.json")
