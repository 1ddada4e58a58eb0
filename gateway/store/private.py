"""Owner-only files for the embedded store: the instance folder and every SQLite file in it hold
every student record, so neither may be readable by other accounts on the host.

Modes are set explicitly (``chmod``), not left to the process umask, which a service manager or a
shell may have set to anything. SQLite's unix VFS gives the files it creates beside a database
(``-wal``, ``-shm``, ``-journal``) the mode of the database file itself, so creating the database
file 0600 before SQLite first opens it covers them too; :func:`protect_sqlite_files` does that for
any engine on a SQLite file (the main store, or another SQLite file beside it).
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

PRIVATE_FOLDER_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# The files SQLite may create beside a database (WAL mode, rollback journal).
SQLITE_SIDE_FILE_SUFFIXES = ("-wal", "-shm", "-journal")


def make_private_folder(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and its parents) if needed and make it owner-only (0700)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER_MODE)
    # mkdir's mode is filtered by the umask and ignored for a folder that already exists (an
    # install made before this rule): set it outright.
    folder.chmod(PRIVATE_FOLDER_MODE)
    return folder


def create_private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty and owner-only (0600) unless it exists; make it owner-only anyway."""
    file = Path(path)
    try:
        # O_EXCL: never truncate or follow into a file that appeared meanwhile; the mode is given
        # at creation so the file is never readable by others, not even for an instant.
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass
    file.chmod(PRIVATE_FILE_MODE)
    return file


def sqlite_file_of(url: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URL; None for other backends and in-memory
    databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def secure_sqlite_file(path: str | os.PathLike[str]) -> None:
    """Make the database file ``path`` and the side files SQLite keeps beside it owner-only,
    creating the database file (empty, 0600) if it does not exist yet."""
    database = Path(path)
    if not database.parent.is_dir():
        # Nothing to protect; SQLite reports the missing folder in its own words.
        return
    create_private_file(database)
    for suffix in SQLITE_SIDE_FILE_SUFFIXES:
        side = database.with_name(database.name + suffix)
        try:
            side.chmod(PRIVATE_FILE_MODE)
        except FileNotFoundError:
            pass


def protect_sqlite_files(engine: Engine) -> None:
    """Before each new connection of ``engine`` (a SQLite file), make the file and its side files
    owner-only; does nothing for other backends.

    Run before the driver opens the file, so SQLite never creates it with the umask's mode, and on
    every new pooled connection (rare), so a file left readable by an older version is fixed.
    """
    path = sqlite_file_of(engine.url.render_as_string(hide_password=False))
    if path is None:
        return

    @event.listens_for(engine, "do_connect")
    def _secure_before_open(dialect, connection_record, cargs, cparams):
        secure_sqlite_file(path)
        # None: let SQLAlchemy open the connection as usual.
        return None
