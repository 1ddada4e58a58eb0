"""CSV export per app: a OneRoster 1.2.1 CSV bundle (bulk, or delta since a time) of exactly what
an app's sharing policy lets it see, as the REST service serves it, recorded in the ledger.

How, and why:

- **The records are the REST service's own pages.** Each file is read with
  :func:`gateway.oneroster.service.list_records` over the top-level collection REST serves it from
  (``getAllOrgs`` ... ``getAllDemographics``), with the app's
  :class:`~gateway.sharing.visibility.Visibility`: the scope, masks, pseudonyms and withheld
  fields are the ones REST applies, by construction. Nothing here decides what an app sees. A
  bulk bundle reads ``status='active'`` (a bulk file is the whole set: what it leaves out is
  deleted); a delta reads ``dateLastModified>'SINCE'``, ``tobedeleted`` records included.
- **The pages become CSV as they arrive** (:class:`gateway.sis.bundle.BundleWriter`, which also
  writes a SIS pull's REST records as a bundle): rows are spilled to disk, the CSV files written
  at the end. A user's ``roles`` and ``userProfiles`` become rows of roles.csv and
  userProfiles.csv (a role's sourcedId derived from its user, org and role, since REST gives
  roles none). Memory stays flat whatever the district's size.
- **Resources** (an app holding a resources scope): resources.csv is read like the rostering
  files, from the Resources service's ``getAllResources``. The link files (classResources,
  courseResources, userResources; ``resource.readonly``, which reads a class's, course's or
  person's resources on REST) have no REST collection: they are the store's links whose class,
  course or user *and* resource the app may see (``Visibility.where``, as REST's nested reads),
  their references presented as REST presents them. A link naming a pseudonymized record gets
  an id derived from the ids the app knows (a SIS often builds link ids from the ids they join).
  The userResources rows are disclosures about their people, as ``getResourcesForUser`` is.
- **Gradebook** (an app holding a scope that reads the entity on the Gradebook service,
  :data:`gateway.gradebook.endpoints.READ_SCOPES`): categories.csv, scoreScales.csv,
  lineItems.csv and results.csv are the pages of ``getAllCategories`` ... ``getAllResults``, read
  with :func:`gateway.gradebook.service.list_records` (its scope rule: line items, score scales
  and results of classes the app may see, results of students it may see), their references as
  REST presents them, written in the binding's columns (:data:`binding.GRADEBOOK_CSV_FILES`).
  Only the fields a file carries are read; the results are disclosed about their students, as
  REST's reads of results are. As on REST, reading the categories gives each class that has
  none its default category (which line items without a category name): the one write of an
  export, committed with it.
- **Every page about people is disclosed** (channel :data:`CHANNEL`, the endpoint the page came
  from: ``getAllUsers``...) by the read service itself. Entries are noted in a spool on disk
  (:class:`~gateway.sharing.ledger.SpooledLedgerWriter`) and appended in one transaction once the
  bundle is complete and before it is anywhere a reader finds it: the CLI renames it into place
  after that commit, the download sends it after it. If the append fails, nothing is delivered.
- **One consistent bundle.** The reads are one transaction. SQLite reads a snapshot; PostgreSQL
  (read committed) would see an import that commits between two pages, so the district's data
  version is compared before and after, and the bundle read again if it moved.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any, Callable

from sqlalchemy import exists, select
from sqlalchemy import Column as SqlColumn
from sqlalchemy import Table
from sqlalchemy.orm import Session

from gateway.errors import Forbidden, GatewayError, InvalidData, UsageError
from gateway.gradebook import endpoints as gradebook_endpoints
from gateway.gradebook import service as gradebook
from gateway.oneroster.csv import binding
from gateway.oneroster.endpoints import BASE_PATH, ENDPOINTS, RESOURCES, Endpoint
from gateway.oneroster.serialize import format_datetime
from gateway.oneroster.schemas import ALL_ENTITIES
from gateway.oneroster.service import list_records, offered_fields, parse_collection_params
from gateway.oneroster.vocabulary import (RESOURCES_SCOPES, SCOPE_RESOURCE, SCOPE_ROSTER,
                                          SCOPE_ROSTER_CORE, SCOPE_ROSTER_DEMOGRAPHICS)
from gateway.sharing import visibility_for
from gateway.sharing.ledger import SpooledLedgerWriter
from gateway.sharing.service import app_district_id, district_sourced_id, find_app, load_policy
from gateway.sharing.visibility import Visibility
from gateway.sis.bundle import (COLLECTIONS, RESOURCES_COLLECTION, BundleWriter, Collection,
                                csv_value)
from gateway.store import Database
from gateway.store.apps import granted_scopes
from gateway.store.resources import class_resources, course_resources, resources, user_resources
from gateway.store.rostering import ENTITY_TABLES, PageCache, district_data_version
from gateway.store.models import utcnow

CHANNEL = "csv-export"
"""The ledger channel of everything a CSV export discloses (the file and the download alike)."""
PAGE_SIZE = 1000
"""Records read per page (the page cache's anchor stride: every page is a keyset seek)."""
SYSTEM_NAME = "K-12 interoperability gateway"
"""The manifest's ``source.systemName``."""
ATTEMPTS = 3
"""How many times an export is read while imports keep changing the district under it."""
READ_SCOPES = (SCOPE_ROSTER_CORE, SCOPE_ROSTER)
"""An app needs one of these to receive a bundle (the scopes of the top-level collections)."""

ProgressCallback = Callable[[str, int, int], None]
"""``progress(file_name, records_done, records_total)``, after each page."""

_SOURCES: dict[str, Endpoint] = {
    **{collection.name: next(e for e in ENDPOINTS if e.path == f"/{collection.name}")
       for collection in COLLECTIONS},
    RESOURCES_COLLECTION.name: next(e for e in RESOURCES.endpoints if e.path == "/resources")}
"""The top-level REST collection each file is read from."""

_LINKS: tuple[tuple[binding.CsvFile, Table, str], ...] = (
    (binding.CLASS_RESOURCES, class_resources, "class"),
    (binding.COURSE_RESOURCES, course_resources, "course"),
    (binding.USER_RESOURCES, user_resources, "user"))
"""Each link file of the Resources service, its table and the entity its owner column names."""
_GRADEBOOK: tuple[tuple[binding.CsvFile, gradebook_endpoints.Operation], ...] = tuple(
    (csv_file, gradebook_endpoints.BY_OPERATION_ID[operation_id]) for csv_file, operation_id in (
        (binding.CATEGORIES, "getAllCategories"), (binding.SCORE_SCALES, "getAllScoreScales"),
        (binding.LINE_ITEMS, "getAllLineItems"), (binding.RESULTS, "getAllResults")))
"""Each gradebook file and the Gradebook service's collection it is read from (references
first, as the importer reads them)."""
DEFAULT_CATEGORY_TITLE = "Default"
"""The default category's title when the caller gives none (``GATEWAY_DEFAULT_CATEGORY_TITLE``)."""
_REF_ENTITIES = {"classes": "class", "courses": "course", "users": "user", "orgs": "org",
                 "resources": "resource"}
"""The entity of each file a link's reference column points into."""


class InvalidSince(InvalidData):
    """``since`` is not an ISO 8601 date-time."""


class NothingShared(Forbidden):
    """The district shares nothing with the app: there is nothing it may receive."""


class ExportUnsettled(GatewayError):
    """Imports kept changing the district while the export read it."""

    status = 503


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What an export wrote: its mode, rows per file (files with none are ``absent``), the
    writer's notices, and how many ledger entries were appended."""

    mode: str
    rows: dict[str, int]
    notices: tuple[str, ...]
    disclosures: int = 0


def parse_since(text: str | None) -> dt.datetime | None:
    """``--since`` / ``?since=``: an ISO 8601 date-time (``Z`` or an offset; none means UTC) or
    a date (its midnight UTC), as naive UTC; None when not given. InvalidSince otherwise."""
    if text is None or not text.strip():
        return None
    raw = text.strip()
    try:
        if "T" in raw or " " in raw:
            value = dt.datetime.fromisoformat(raw)
        else:
            value = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time())
    except ValueError:
        raise InvalidSince(f"since: {text!r} is not an ISO 8601 date-time such as "
                           "2026-09-01T08:00:00Z (or a date, 2026-09-01)") from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _filter(since: dt.datetime | None) -> str:
    return (f"dateLastModified>'{format_datetime(since)}'" if since is not None
            else "status='active'")


_NOT_IN_FILES = frozenset({"resources"})
"""REST fields no file of the bundle carries: the 1.2.1 binding dropped users.csv
``resourceSourcedIds``, and classes.csv and courses.csv never had a column for them (a record's
resources are rows of the resources files, which an export does not write). They are not read,
so they are not reported as disclosed."""


def _selection(endpoint: Endpoint, visibility: Visibility) -> tuple[str, ...]:
    """The ``fields`` values an export reads ``endpoint`` with: none (everything the app may see)
    unless the app may see a field no file carries, which is then left out."""
    offered = offered_fields(ALL_ENTITIES[endpoint.entity], visibility)
    if _NOT_IN_FILES.isdisjoint(offered):
        return ()
    return (",".join(name for name in offered if name not in _NOT_IN_FILES),)


def _read_collection(session: Session, visibility: Visibility, collection: Collection,
                     writer: BundleWriter, *, district_id: int, filter_text: str,
                     base_url: str, progress: ProgressCallback | None) -> None:
    """Every page of ``collection`` the app may see, from REST's read path into ``writer``."""
    endpoint = _SOURCES[collection.name]
    cache = PageCache(stride=PAGE_SIZE)
    fields = _selection(endpoint, visibility)
    offset = 0
    while True:
        params = parse_collection_params(limit=str(PAGE_SIZE), offset=str(offset),
                                         filter=filter_text, max_limit=PAGE_SIZE, fields=fields)
        page = list_records(session, endpoint, (), params, district_id=district_id,
                            visibility=visibility, base_url=base_url, cache=cache,
                            channel=CHANNEL)
        records = page.records  # decoded from the page's JSON once
        writer.add_page(collection, records)
        offset += len(records)
        if progress is not None:
            progress(collection.csv_file.name, offset, page.total)
        if not records or offset >= page.total:
            return


def _visible(visibility: Visibility, entity: str, table: Table, district_id: int,
             sourced_id: SqlColumn[Any]):
    """SQL: ``sourced_id`` names a record of ``entity`` the app may see."""
    predicate = visibility.where(entity, table)
    return exists().where(table.c.district_id == district_id, table.c.sourced_id == sourced_id,
                          *(() if predicate is None else (predicate,)))


def _present_id(visibility: Visibility, entity: str, stored: str) -> str:
    """A stored id as REST shows it to the app (its pseudonym where ids of ``entity`` are)."""
    return visibility.present(entity, {"sourcedId": stored}).get("sourcedId", stored)


def _read_links(session: Session, visibility: Visibility, writer: BundleWriter, *,
                district_id: int, since: dt.datetime | None) -> None:
    """The link files' rows the app may see (see the module's docstring) into ``writer``: a bulk
    export's active links, a delta's changed since ``since``; each person's are disclosed."""
    people: dict[str, tuple[str, int]] = {}
    for csv_file, link, owner in _LINKS:
        owner_column = link.c[f"{owner}_sourced_id"]
        query = select(link).where(
            link.c.district_id == district_id,
            link.c.status != "tobedeleted" if since is None else link.c.date_last_modified > since,
            _visible(visibility, owner, ENTITY_TABLES[owner], district_id, owner_column),
            _visible(visibility, "resource", resources, district_id,
                     link.c.resource_sourced_id)).order_by(link.c.sourced_id)
        written: set[str] = set()
        # Streamed in pages into the writer's spill; only the ids written are kept (a repeat
        # would make the bundle's import refuse it).
        for row in session.execute(query.execution_options(yield_per=PAGE_SIZE)).mappings():
            values = _link_values(visibility, csv_file, row)
            if values["sourcedId"] in written:
                continue  # the same link twice in the SIS, told apart only by its clear ids
            written.add(values["sourcedId"])
            writer.add_rows(csv_file, [values])
            if owner == "user":
                user = row["user_sourced_id"]
                people[user] = (values["userSourcedId"], people.get(user, ("", 0))[1] + 1)
    if people:
        # What a person uses is about that person, as on REST (getResourcesForUser).
        users = sorted(people)
        visibility.disclosed(CHANNEL, "getResourcesForUser", "user",
                             [{"sourcedId": people[user][0], "resources": people[user][1]}
                              for user in users], users)


def _link_values(visibility: Visibility, csv_file: binding.CsvFile, row: Any) -> dict[str, Any]:
    """A link row as the app receives it: CSV values by column name, references as REST
    presents them (see :func:`_link_id` for its own id)."""
    values: dict[str, Any] = {
        "status": row["status"], "metadata": row["metadata"],
        "dateLastModified": format_datetime(row["date_last_modified"])}
    for column in csv_file.columns:
        if column.kind == "ref" and row[column.attribute] is not None:
            values[column.name] = _present_id(
                visibility, _REF_ENTITIES[column.target], row[column.attribute])
        elif column.name not in values and column.attribute in row:
            values[column.name] = row[column.attribute]
    values["sourcedId"] = _link_id(csv_file, row, values)
    return values


def _link_id(csv_file: binding.CsvFile, row: Any, values: dict[str, Any]) -> str:
    """A link's sourcedId as the app receives it: as stored, unless one of its references
    leaves pseudonymized; then one derived from the references as the app knows them, the same
    on every export."""
    refs = [column for column in csv_file.columns if column.kind == "ref"]
    if all(values.get(column.name) == row[column.attribute] for column in refs):
        return row["sourced_id"]
    known = "\x1f".join(str(values.get(column.name) or "") for column in refs)
    return f"{csv_file.name}-{hashlib.sha256(known.encode('utf-8')).hexdigest()[:32]}"


def _gradebook_field(column: binding.Column) -> str | None:
    """The REST field a gradebook file's column is written from: a reference column
    (``classSourcedId``) from the reference (``class``), the others from the field of their name;
    None where REST has no such field (a score scale's ``orgSourcedId``)."""
    if column.kind == "ref":
        name = column.name[:-len("SourcedId")]
        return None if name == "org" else name
    return column.name


def _gradebook_row(csv_file: binding.CsvFile, record: dict[str, Any]) -> dict[str, Any]:
    """A gradebook REST record as CSV values by column name (1.2.1 CSV binding): references as
    their sourcedId, a score scale's values as ``{itemValueLHS:itemValueRHS},...``."""
    values: dict[str, Any] = {"metadata": record.get("metadata")}
    for column in csv_file.columns:
        field = _gradebook_field(column)
        value = None if field is None else record.get(field)
        if column.kind == "scalevalues" and isinstance(value, list):
            values[column.name] = ",".join(
                f"{{{item.get('itemValueLHS', '')}:{item.get('itemValueRHS', '')}}}"
                for item in value)
        else:
            values[column.name] = csv_value(column, value)
    values["status"] = values["status"] or "active"
    return values


def _read_gradebook(session: Session, visibility: Visibility, writer: BundleWriter, *,
                    district_id: int, filter_text: str, base_url: str, scopes: frozenset[str],
                    default_category_title: str, progress: ProgressCallback | None) -> None:
    """Every page of each gradebook collection the app holds a scope to read, from the
    Gradebook service's read path into ``writer``."""
    links = gradebook.make_links(
        base_url, base_url[:-len(BASE_PATH)] + gradebook_endpoints.BASE_PATH, visibility)
    caller = gradebook.Caller(district_id=district_id, visibility=visibility, links=links,
                              default_category_title=default_category_title, now=utcnow(),
                              channel=CHANNEL)
    for csv_file, operation in _GRADEBOOK:
        if not scopes.intersection(gradebook_endpoints.READ_SCOPES[operation.entity]):
            continue
        # Only the fields the file carries are read (and so reported to the ledger).
        fields = {_gradebook_field(column) for column in csv_file.columns if column.listed}
        fields = (",".join(sorted(name for name in fields if name) + ["metadata"]),)
        offset = 0
        while True:
            params = parse_collection_params(limit=str(PAGE_SIZE), offset=str(offset),
                                             filter=filter_text, max_limit=PAGE_SIZE,
                                             fields=fields)
            page = gradebook.list_records(session, operation, (), params, caller)
            writer.add_rows(csv_file, [_gradebook_row(csv_file, record)
                                       for record in page.records])
            offset += len(page.records)
            if progress is not None:
                progress(csv_file.name, offset, page.total)
            if not page.records or offset >= page.total:
                break


def write_bundle(session: Session, visibility: Visibility, ledger: SpooledLedgerWriter,
                 root: Path, *, district_id: int, since: dt.datetime | None,
                 scopes: frozenset[str], base_url: str,
                 progress: ProgressCallback | None = None,
                 default_category_title: str = DEFAULT_CATEGORY_TITLE
                 ) -> tuple[Path, ExportResult]:
    """Write the app's bundle as ``root/bundle.zip`` (work files in ``root``) and return it with
    what it holds. ``visibility`` must report to ``ledger``; its entries are noted, not appended
    (the caller appends them before the bundle goes anywhere). ``scopes``: the app's, which
    decide the files beyond the roster's (demographics, resources, the resources' links, the
    gradebook's); ``default_category_title``: the title of a class's default category, made
    when the categories are read as on REST.
    Raises ExportUnsettled if imports kept changing the district."""
    mode = "delta" if since is not None else "bulk"
    filter_text = _filter(since)
    conn = session.connection()
    for attempt in range(ATTEMPTS):
        folder, work = root / f"bundle-{attempt}", root / f"work-{attempt}"
        folder.mkdir()
        work.mkdir()
        ledger.discard()
        version = district_data_version(conn, district_id)
        writer = BundleWriter(folder, work, mode)
        try:
            for collection in COLLECTIONS:
                if collection.name == "demographics" and SCOPE_ROSTER_DEMOGRAPHICS not in scopes:
                    continue
                _read_collection(session, visibility, collection, writer,
                                 district_id=district_id, filter_text=filter_text,
                                 base_url=base_url, progress=progress)
            if scopes.intersection(RESOURCES_SCOPES):
                _read_collection(session, visibility, RESOURCES_COLLECTION, writer,
                                 district_id=district_id, filter_text=filter_text,
                                 base_url=base_url, progress=progress)
            if SCOPE_RESOURCE in scopes:
                _read_links(session, visibility, writer, district_id=district_id, since=since)
            _read_gradebook(session, visibility, writer, district_id=district_id,
                            filter_text=filter_text, base_url=base_url, scopes=scopes,
                            default_category_title=default_category_title, progress=progress)
            if district_data_version(conn, district_id) == version:
                rows = writer.finish(SYSTEM_NAME, None, blank_bulk_stamps=True)
                target = root / "bundle.zip"
                _zip_folder(folder, target)
                return target, ExportResult(mode, rows, tuple(writer.notices))
        finally:
            writer.close()
            shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
    raise ExportUnsettled(f"the district's data changed during each of {ATTEMPTS} attempts to "
                          "export it (imports running); try again when they are done")


def open_bundle(session: Session, visibility: Visibility, ledger: SpooledLedgerWriter, *,
                district_id: int, since: dt.datetime | None, scopes: frozenset[str],
                base_url: str, default_category_title: str = DEFAULT_CATEGORY_TITLE
                ) -> tuple[IO[bytes], ExportResult]:
    """:func:`write_bundle` in a private temporary folder, returned as a file opened for reading
    whose folder is already removed: nothing of the bundle stays on disk once it is closed."""
    with tempfile.TemporaryDirectory(prefix="gateway-export-") as temporary:
        target, result = write_bundle(session, visibility, ledger, Path(temporary),
                                      district_id=district_id, since=since,
                                      scopes=scopes, base_url=base_url,
                                      default_category_title=default_category_title)
        return open(target, "rb"), result


def _zip_folder(folder: Path, target: Path) -> None:
    """The bundle folder as a zip, the manifest first, each file streamed from disk; readable
    by its owner only (it holds personal data)."""
    names = sorted(p.name for p in folder.iterdir())
    names.sort(key=lambda name: name != binding.MANIFEST)
    with open(target, "wb") as raw:
        os.chmod(target, 0o600)
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for name in names:
                bundle.write(folder / name, arcname=name)


@dataclasses.dataclass(frozen=True)
class FileExport:
    """What ``gateway export`` did: the app, the district, the file and what it holds."""

    app_id: int
    app_name: str
    district: str
    path: Path
    result: ExportResult


def export_to_file(database: Database, *, app: str, district: str | None, out: Path,
                   since: dt.datetime | None, secret_key: str | bytes, issuer: str,
                   progress: ProgressCallback | None = None,
                   clock: Callable[[], dt.datetime] = utcnow,
                   default_category_title: str = DEFAULT_CATEGORY_TITLE) -> FileExport:
    """Write app ``app``'s bundle (its id or client_id; ``district`` when it has several) to
    ``out``: built beside it under a temporary name, its disclosures appended and committed,
    then renamed into place, so ``out`` is complete or untouched. Raises UsageError for an
    unknown app, district or target, NothingShared, ExportUnsettled."""
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; name the .zip file to write")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as temporary:
        root = Path(temporary)
        with database.session_scope() as session:
            found = find_app(session, app)
            district_id = app_district_id(session, found.id, district)
            district_name = district_sourced_id(session, district_id)
            scopes = granted_scopes(session, found.id, district_id)
            if not scopes:
                raise UsageError(f"app {found.id} ({found.name}) has no live client in district "
                                 f"{district_name}: its access is revoked")
            if not scopes.intersection(READ_SCOPES):
                raise NothingShared(f"app {found.id} ({found.name}) holds no roster read scope "
                                    f"in district {district_name}, so it may receive no roster")
            if load_policy(session, found.id, district_id) is None:
                raise NothingShared(f"district {district_name} has set no sharing policy for app "
                                    f"{found.id} ({found.name}): it shares nothing with it")
            ledger = SpooledLedgerWriter(session, app_id=found.id, district_id=district_id,
                                         clock=clock, folder=temporary)
            try:
                visibility = visibility_for(session, app_id=found.id, district_id=district_id,
                                            secret_key=secret_key, clock=clock, ledger=ledger)
                refusal = visibility.refusal()
                if refusal is not None:
                    raise NothingShared(f"app {found.id} ({found.name}) may see nothing of "
                                        f"district {district_name}: {refusal}")
                target, result = write_bundle(
                    session, visibility, ledger, root, district_id=district_id, since=since,
                    scopes=scopes,
                    base_url=issuer.rstrip("/") + BASE_PATH, progress=progress,
                    default_category_title=default_category_title)
                # The reads end here. SQLite cannot turn their snapshot into a write once
                # someone else has written (see gateway.http.visibility): the entries are
                # appended in a transaction of their own, which the scope commits.
                session.commit()
                appended = len(ledger.flush())
            finally:
                ledger.close()
        # Only now, with every disclosure committed, is the bundle where anyone finds it.
        os.replace(target, out)
    return FileExport(found.id, found.name, district_name, out,
                      dataclasses.replace(result, disclosures=appended))
