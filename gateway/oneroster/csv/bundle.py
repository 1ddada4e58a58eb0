"""Opening a OneRoster CSV bundle (a folder or a .zip) and reading its manifest (1.2.1 CSV §2.1)."""
from __future__ import annotations

import csv
import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator

from gateway.oneroster.csv import binding
from gateway.oneroster.csv.limits import ImportLimits, LineTooLong, bounded_lines, is_field_too_large
from gateway.oneroster.csv.problems import Notice, Problem

# A manifest names each of the binding's files once, plus a few properties.
MAX_MANIFEST_ROWS = 1000
# Entries smaller than this cannot be bombs, whatever they compress to.
_RATIO_FLOOR_BYTES = 1024 * 1024


class BundleError(Exception):
    """The bundle cannot be read at all (missing, not a folder or zip, no manifest...)."""


def _refuse(path: Path, what: str, limits: ImportLimits, limit: str) -> BundleError:
    return BundleError(f"{path}: refused before reading: {what}, over the limit of "
                       f"{limits.setting(limit)}")


class _CountingReader(io.RawIOBase):
    """A raw stream that counts the bytes read through it, for progress reporting."""

    def __init__(self, raw: IO[bytes], counter: list[int]) -> None:
        self._raw = raw
        self._counter = counter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._counter[0] += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class Bundle:
    """The files of a bundle, opened as UTF-8 text (a BOM is tolerated) in RFC 4180 mode."""

    def __init__(self, path: str | os.PathLike[str], limits: ImportLimits | None = None) -> None:
        self.path = Path(path)
        self.limits = limits = limits or ImportLimits()
        self.bytes_read = [0]
        if not self.path.exists():
            raise BundleError(f"{self.path}: no such file or folder")
        if self.path.is_dir():
            self._zip = None
            self._prefix = ""
            files = [p for p in self.path.iterdir() if p.is_file()]
            if len(files) > limits.max_entries:
                raise _refuse(self.path, f"{len(files)} files", limits, "max_entries")
            self._names = {p.name: p.stat().st_size for p in files}
            sizes = list(self._names.values())
        elif zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            try:
                self._check_zip_directory()
            except BundleError:
                self._zip.close()
                raise
            infos = [i for i in self._zip.infolist() if not i.is_dir()]
            # Zips made by "compress this folder" keep the folder: accept one top-level folder
            # (the manifest's, or, for formats without one, the folder every file is in).
            manifests = [i.filename for i in infos if i.filename.rsplit("/", 1)[-1] == binding.MANIFEST]
            folders = {i.filename.split("/", 1)[0] + "/" if "/" in i.filename else "" for i in infos}
            if len(manifests) == 1:
                self._prefix = manifests[0][: -len(binding.MANIFEST)]
            else:
                self._prefix = folders.pop() if len(folders) == 1 else ""
            self._names = {i.filename[len(self._prefix):]: i.file_size for i in infos
                           if i.filename.startswith(self._prefix) and "/" not in i.filename[len(self._prefix):]}
            sizes = [i.file_size for i in infos]
        else:
            raise BundleError(f"{self.path}: not a folder or a .zip file")
        if sum(sizes) > limits.max_bundle_bytes:
            self.close()
            raise _refuse(self.path, f"its files hold {sum(sizes)} bytes", limits, "max_bundle_bytes")

    def _check_zip_directory(self) -> None:
        """Refuse a zip bomb from its central directory alone, before extracting anything. The
        declared sizes are binding: zipfile never returns more than an entry declares."""
        assert self._zip is not None
        limits = self.limits
        infos = self._zip.infolist()
        if len(infos) > limits.max_entries:
            raise _refuse(self.path, f"{len(infos)} entries", limits, "max_entries")
        for info in infos:
            if info.file_size < _RATIO_FLOOR_BYTES:
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_compression_ratio:
                raise _refuse(self.path, f"{info.filename} expands {ratio:.0f} times "
                              f"({info.compress_size} bytes to {info.file_size})", limits,
                              "max_compression_ratio")

    def names(self) -> set[str]:
        """The file names at the bundle's top level."""
        return set(self._names)

    def size(self, name: str) -> int:
        """The size in bytes of file ``name``."""
        return self._names[name]

    def open_text(self, name: str) -> IO[str]:
        """Open ``name`` for csv reading: UTF-8 with an optional BOM, newlines left to csv."""
        if self._zip is None:
            raw: IO[bytes] = open(self.path / name, "rb")
        else:
            raw = self._zip.open(self._prefix + name)
        counted = io.BufferedReader(_CountingReader(raw, self.bytes_read), buffer_size=1 << 16)
        return io.TextIOWrapper(counted, encoding="utf-8-sig", newline="")

    def open_binary(self, name: str) -> IO[bytes]:
        """Open ``name`` as bytes (to locate encoding errors)."""
        if self._zip is None:
            return open(self.path / name, "rb")
        return self._zip.open(self._prefix + name)

    def close(self) -> None:
        """Release the zip file, if any."""
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> "Bundle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def line_too_long(limits: ImportLimits) -> str:
    """What a problem says of a line over the line length limit (reading stops there)."""
    return (f"lines of at most {limits.setting('max_line_length')} characters; "
            "this one is longer, and the file was not read further")


def field_too_long(limits: ImportLimits) -> str:
    """What a problem says of a field over the field length limit (reading stops there)."""
    return (f"fields of at most {limits.setting('max_field_length')} characters; "
            "this record holds a longer one, and the file was not read further")


@dataclass
class Manifest:
    """What manifest.csv declares: its properties, the line each is on, and each data file's mode
    (set by the format that reads the manifest, which knows its version's files)."""

    properties: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)

    def mode(self, name: str) -> str:
        """``bulk``, ``delta`` or ``absent`` for data file ``name``."""
        return self.modes.get(name, "absent")


def read_manifest(bundle: Bundle, name: str, problems: list[Problem],
                  notice: Callable[[Notice], None]) -> Manifest | None:
    """Read the properties of the bundle's manifest (called ``name`` in the bundle), appending a
    :class:`Problem` for each defect; None when it cannot be read at all. Checking what the
    properties say is the format's job (:mod:`gateway.formats.oneroster`)."""
    manifest = Manifest()
    limits = bundle.limits
    rows: list[list[str]] = []
    reader = None
    try:
        with bundle.open_text(name) as handle:
            reader = csv.reader(bounded_lines(handle, limits.max_line_length), strict=True)
            for row in reader:
                if len(rows) == MAX_MANIFEST_ROWS:
                    problems.append(Problem(name, reader.line_num, None, None,
                                            f"at most {MAX_MANIFEST_ROWS} rows in a manifest"))
                    return None
                rows.append(row)
    except LineTooLong:
        problems.append(Problem(name, (reader.line_num if reader else 0) + 1, None, None, line_too_long(limits)))
        return None
    except csv.Error as exc:
        expected = field_too_long(limits) if is_field_too_large(exc) else f"a readable UTF-8 CSV file ({exc})"
        problems.append(Problem(name, 1, None, None, expected))
        return None
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, 1, None, None, f"a readable UTF-8 CSV file ({exc})"))
        return None
    header = tuple(rows[0]) if rows else ()
    first_property = 2
    if header != binding.MANIFEST_HEADER:
        if tuple(h.strip().lower() for h in header) == tuple(h.lower() for h in binding.MANIFEST_HEADER):
            notice(Notice(name, 1, None, ",".join(header), ",".join(binding.MANIFEST_HEADER),
                          "header differs from the binding's only in case or spaces"))
        else:
            problems.append(Problem(name, 1, None, ",".join(header), "the header " + ",".join(binding.MANIFEST_HEADER)))
            # A manifest without its header still says what it says: read its rows all the same.
            first_property = 1 if len(header) == 2 and "." in header[0] else 2
    for line, row in enumerate(rows[first_property - 1:], start=first_property):
        if len(row) != 2:
            problems.append(Problem(name, line, None, ",".join(row), "two fields: propertyName,value"))
            continue
        key, value = row[0].strip(), row[1].strip()
        if key in manifest.properties:
            problems.append(Problem(name, line, "propertyName", key,
                                    f"each property once (already on line {manifest.lines[key]})"))
            continue
        manifest.properties[key] = value
        manifest.lines[key] = line
    return manifest
