"""The spool: where a queued import's bundle waits for the worker that runs it.

A worker may run on another host than the command that queued the import, so the bundle is
copied into the spool (``GATEWAY_SPOOL_DIR``, by default ``spool/`` in the instance folder; in a
multi-host install, storage every host mounts at the same path), one owner-only folder per job.
The job removes its folder once it has reported; a job that failed keeps it, for a retry or a look.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

from gateway.store.private import make_private_folder


def spool_folder(settings: Mapping[str, Any], instance_path: str) -> Path:
    """The spool of this configuration (made, owner-only, if missing)."""
    folder = Path(settings.get("SPOOL_DIR") or Path(instance_path) / "spool")
    make_private_folder(str(folder))
    return folder


def spool_bundle(path: Path, spool: Path) -> Path:
    """Copy the bundle at ``path`` (a folder or a file) into a new folder of ``spool``; the
    copy's path. The copy keeps the bundle's name, which the import reads formats by."""
    # mkdtemp: owner-only whatever the umask, since the bundle is every student's record.
    folder = Path(tempfile.mkdtemp(prefix="import-", dir=spool))
    target = folder / (path.resolve().name or "bundle")
    try:
        if path.is_dir():
            shutil.copytree(path, target)
        else:
            shutil.copyfile(path, target)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return target
