"""Records of a OneRoster 1.2 rostering REST service written as a OneRoster 1.2.1 CSV bundle, so
that a pull is validated and imported by exactly the code that imports a file.

Which REST field fills which CSV column is not written down here: both bindings already say which
store column each of their fields is (:data:`gateway.oneroster.schemas.FIELD_MAPS` for REST,
:mod:`gateway.oneroster.csv.binding` for CSV), and a REST field fills the CSV column of the same
store column. So ``preferredFirstName`` fills ``preferredGivenName``, ``class.terms`` fills
``termSourcedIds``, and a field added to both bindings is pulled without a change here.

What the CSV binding holds in files of their own, REST embeds in a user: its ``roles`` (which have
no sourcedId in REST: each gets one derived from its user, org and role, the same on every pull)
and its ``userProfiles`` (one credential per CSV row: the first). Passwords are never written,
neither a user's nor a vendor credential's: the gateway keeps neither.

Rows are spilled as JSON lines while pages arrive and turned into CSV at the end, once every
``metadata`` key (each becomes a ``metadata.<key>`` column) is known: memory stays flat whatever
the district's size.
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Mapping, Sequence

import orjson

from gateway.oneroster.csv import binding
from gateway.oneroster.csv.binding import Column, CsvFile
from gateway.oneroster.schemas import ENTITIES, FIELD_MAPS, RESOURCE_ENTITIES, FieldSpec

ACTIVE, TOBEDELETED = "active", "tobedeleted"
USER_PARTS = ("roles", "userProfiles")


def _rest_names(csv_file: CsvFile, *field_maps: Mapping[str, FieldSpec]) -> tuple[str | None, ...]:
    """For each column of ``csv_file``, the REST field stored in the same store column (None
    where REST has none: passwords, and the columns a user's parts get from the user)."""
    by_column = {spec.column: spec.name for field_map in field_maps for spec in field_map.values()
                 if spec.column is not None and spec.served}
    return tuple(None if column.kind in ("password", "discarded")
                 else by_column.get(column.attribute) for column in csv_file.columns)


@dataclass(frozen=True)
class Collection:
    """A REST collection pulled into the CSV file of the same name."""

    name: str
    entity: str
    csv_file: CsvFile
    rest_names: tuple[str | None, ...]


COLLECTIONS: tuple[Collection, ...] = tuple(
    Collection(entity.collection_key, entity.name, binding.ROSTERING_BY_NAME[entity.collection_key],
               _rest_names(binding.ROSTERING_BY_NAME[entity.collection_key], entity.fields))
    for entity in ENTITIES.values())
"""The collections a pull reads, in the order the importer needs them (references first)."""

RESOURCES_COLLECTION = Collection(
    "resources", "resource", binding.RESOURCES,
    _rest_names(binding.RESOURCES, RESOURCE_ENTITIES["resource"].fields))
"""The Resources service's collection, written to resources.csv (a CSV export's; a pull reads
the rostering service only)."""

_ROLE_NAMES = _rest_names(binding.ROLES, FIELD_MAPS["role"])
_PROFILE_NAMES = _rest_names(binding.USER_PROFILES, FIELD_MAPS["userProfile"],
                             FIELD_MAPS["credential"])


def role_sourced_id(user: str, org: str, role: str) -> str:
    """The sourcedId a REST role gets as a roles.csv row: the same for the same user, org and
    role on every pull (so a delta updates it rather than adding another), and collision-free
    whatever characters the three hold."""
    digest = hashlib.sha256("\x1f".join((user, org, role)).encode("utf-8")).hexdigest()
    return f"role-{digest[:32]}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return orjson.dumps(value).decode()


def _sourced_id(value: Any) -> str:
    return _text(value.get("sourcedId")) if isinstance(value, dict) else _text(value)


def csv_value(column: Column, value: Any) -> str:
    """A REST value as the CSV column ``column`` writes it (1.2.1 CSV binding §3): references
    as their sourcedId, lists comma-separated, userIds as ``{type:identifier}``, booleans as
    ``true``/``false``."""
    if value is None:
        return ""
    kind = column.kind
    if kind == "ref":
        return _sourced_id(value)
    if kind == "reflist" and isinstance(value, list):
        return ",".join(_sourced_id(item) for item in value)
    if kind == "list" and isinstance(value, list):
        return ",".join(_text(item) for item in value)
    if kind == "userids" and isinstance(value, list):
        return ",".join(f"{{{_text(item.get('type'))}:{_text(item.get('identifier'))}}}"
                        if isinstance(item, dict) else _text(item) for item in value)
    if kind == "bool" and isinstance(value, str):
        return value.lower()
    return _text(value)


def _metadata(record: Mapping[str, Any]) -> dict[str, str] | None:
    metadata = record.get("metadata")
    if not isinstance(metadata, dict) or not metadata:
        return None
    return {str(key): _text(value) for key, value in metadata.items() if value is not None}


CurrentParts = Callable[[Sequence[str]], Mapping[str, Iterable[Mapping[str, str]]]]
"""``current_parts(user_ids)``: the active roles and userProfiles rows the store holds for those
users, by file name, each as CSV values by column name."""


class BundleWriter:
    """Writes pages of REST records into a bundle folder (``folder``), spilling rows to ``work``.

    ``mode``: ``bulk`` (a full pull) or ``delta``. A delta row's ``dateLastModified`` is the
    stamp given to :meth:`finish`, the time of this gateway's import: when this gateway's copy
    changes is what its own apps sync on, and a SIS's older stamp would hide the change from an
    app that synced in between. ``current_parts`` (deltas): see :data:`CurrentParts`; the parts
    it returns that a changed user no longer carries are written ``tobedeleted``.
    """

    def __init__(self, folder: Path, work: Path, mode: str,
                 current_parts: CurrentParts | None = None) -> None:
        assert mode in ("bulk", "delta")
        self.folder = folder
        self.work = work
        self.mode = mode
        self.current_parts = current_parts
        self.rows: dict[str, int] = {f.name: 0 for f in binding.IMPORTED_FILES}
        self.notices: list[str] = []
        self._metadata_keys: dict[str, dict[str, None]] = {
            f.name: {} for f in binding.IMPORTED_FILES}
        self._spills: dict[str, IO[bytes]] = {}
        self._extra_credentials = 0

    # ------------------------------------------------------------------------------ spilling

    def _spill(self, csv_file: CsvFile, values: list[str], metadata: dict[str, str] | None) -> None:
        name = csv_file.name
        handle = self._spills.get(name)
        if handle is None:
            handle = self._spills[name] = open(self.work / f"{name}.jsonl", "wb")
        if metadata:
            self._metadata_keys[name].update(dict.fromkeys(metadata))
        handle.write(orjson.dumps([values, metadata]) + b"\n")
        self.rows[name] += 1

    def _values(self, csv_file: CsvFile, names: Sequence[str | None], record: Mapping[str, Any],
                **given: str) -> list[str]:
        values = []
        for column, name in zip(csv_file.columns, names):
            if column.name in given:
                values.append(given[column.name])
            elif name is None:
                values.append("")
            else:
                values.append(csv_value(column, record.get(name)))
        return values

    @staticmethod
    def _status(record: Mapping[str, Any]) -> str:
        """A record's status: REST requires one; a server that leaves it out has nothing
        tobedeleted."""
        return _text(record.get("status")) or ACTIVE

    # --------------------------------------------------------------------------------- pages

    def add_page(self, collection: Collection, records: Sequence[Mapping[str, Any]]) -> None:
        """Spill one page of ``collection``'s records (and the parts its users embed)."""
        for record in records:
            self._spill(collection.csv_file,
                        self._values(collection.csv_file, collection.rest_names, record,
                                     status=self._status(record)),
                        _metadata(record))
        if collection.name == "users":
            self._add_user_parts(records)

    def add_rows(self, csv_file: CsvFile, rows: Iterable[Mapping[str, Any]]) -> None:
        """Spill rows given as CSV values by column name (absent columns blank), each with its
        ``metadata`` object if any: the files REST has no collection of (classResources...)."""
        for row in rows:
            self._spill(csv_file, [_text(row.get(column.name)) for column in csv_file.columns],
                        _metadata(row))

    def _add_user_parts(self, users: Sequence[Mapping[str, Any]]) -> None:
        written: dict[str, set[str]] = {name: set() for name in USER_PARTS}
        for user in users:
            user_id = user["sourcedId"]
            # A user's parts live and die with it: the roles a retired user is served with
            # were retired with it.
            given = {"status": TOBEDELETED if self._status(user) == TOBEDELETED else ACTIVE,
                     "dateLastModified": _text(user.get("dateLastModified")),
                     "userSourcedId": user_id}
            for role in user.get("roles") or ():
                if not isinstance(role, dict):
                    continue
                sourced_id = role_sourced_id(user_id, _sourced_id(role.get("org")),
                                             _text(role.get("role")))
                if sourced_id in written["roles"]:
                    continue
                written["roles"].add(sourced_id)
                self._spill(binding.ROLES, self._values(binding.ROLES, _ROLE_NAMES, role,
                                                        sourcedId=sourced_id, **given), None)
            for profile in user.get("userProfiles") or ():
                if not isinstance(profile, dict):
                    continue
                credentials = profile.get("credentials") or [{}]
                if len(credentials) > 1:
                    self._extra_credentials += 1
                credential = credentials[0] if isinstance(credentials[0], dict) else {}
                sourced_id = _text(profile.get("profileId"))
                if sourced_id in written["userProfiles"]:
                    continue
                written["userProfiles"].add(sourced_id)
                self._spill(binding.USER_PROFILES,
                            self._values(binding.USER_PROFILES, _PROFILE_NAMES,
                                         {**profile, **credential}, **given), None)
        if self.mode == "delta" and self.current_parts is not None:
            self._retire_dropped_parts([user["sourcedId"] for user in users], written)

    def _retire_dropped_parts(self, user_ids: list[str], written: dict[str, set[str]]) -> None:
        """A delta's changed users carry all their current parts: the ones the store still
        holds for them that they no longer carry are written tobedeleted."""
        if not user_ids:
            return
        current = self.current_parts(user_ids) if self.current_parts else {}
        for name in USER_PARTS:
            csv_file = binding.ROSTERING_BY_NAME[name]
            for row in current.get(name, ()):
                if row["sourcedId"] in written[name]:
                    continue
                retired = [TOBEDELETED if column.name == "status" else row.get(column.name, "")
                           for column in csv_file.columns]
                self._spill(csv_file, retired, None)

    # ---------------------------------------------------------------------------------- files

    def discard(self, name: str) -> None:
        """Forget the rows spilled for file ``name`` (a collection the source refused midway)."""
        handle = self._spills.pop(name, None)
        if handle is not None:
            handle.close()
            (self.work / f"{name}.jsonl").unlink()
        self.rows[name] = 0
        self._metadata_keys[name].clear()

    def finish(self, system_name: str, stamp: str | None, *,
               blank_bulk_stamps: bool = False) -> dict[str, int]:
        """Write the CSV files and the manifest; return the rows written per file. A file with
        no rows is listed ``absent`` (the binding has no empty files). ``stamp``: a delta's
        ``dateLastModified`` (see the class); None keeps each record's own (a CSV export, whose
        reader syncs on them). ``blank_bulk_stamps``: bulk rows leave ``status`` and
        ``dateLastModified`` blank, as the 1.2.1 CSV binding writes them (a pull's own import
        does not need that)."""
        for handle in self._spills.values():
            handle.close()
        if self._extra_credentials:
            self.notices.append(f"{self._extra_credentials} user profile(s) carry more than one "
                                "credential; a userProfiles.csv row holds one: the first was kept")
        blank = blank_bulk_stamps and self.mode == "bulk"
        for csv_file in binding.IMPORTED_FILES:
            if self.rows[csv_file.name]:
                self._write_csv(csv_file, stamp if self.mode == "delta" else None, blank)
        with open(self.folder / binding.MANIFEST, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(binding.MANIFEST_HEADER)
            writer.writerow(["manifest.version", binding.MANIFEST_VERSION])
            writer.writerow(["oneroster.version", binding.ONEROSTER_VERSION])
            for name in binding.ALL_FILE_NAMES:
                writer.writerow([f"file.{name}", self.mode if self.rows.get(name) else "absent"])
            writer.writerow(["source.systemName", system_name])
        return {name: count for name, count in self.rows.items() if count}

    def _write_csv(self, csv_file: CsvFile, stamp: str | None, blank: bool = False) -> None:
        keys = list(self._metadata_keys[csv_file.name])
        # Rows hold a value per column; the file has the binding's header (a column read only
        # when a file has it, listed=False, is not written).
        listed = (None if all(column.listed for column in csv_file.columns)
                  else [i for i, column in enumerate(csv_file.columns) if column.listed])
        stamped = csv_file.header.index("dateLastModified")
        status = csv_file.header.index("status")
        spill = self.work / f"{csv_file.name}.jsonl"
        with open(spill, "rb") as rows, open(self.folder / csv_file.filename, "w", newline="",
                                             encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(list(csv_file.header) + [f"metadata.{key}" for key in keys])
            for line in rows:
                values, metadata = orjson.loads(line)
                if listed is not None:
                    values = [values[i] for i in listed]
                if stamp is not None:
                    values[stamped] = stamp
                elif blank:
                    values[stamped] = values[status] = ""
                if keys:
                    values += [(metadata or {}).get(key, "") for key in keys]
                writer.writerow(values)
        spill.unlink()

    def close(self) -> None:
        """Close the spill files (after an error; :meth:`finish` closes them otherwise)."""
        for handle in self._spills.values():
            handle.close()
