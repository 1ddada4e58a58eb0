"""OneRoster CSV bundles, 1.2 and 1.1: what the manifest declares, and each data file as a feed of
1.2 rows (1.1 files converted on the way, see the README's conversion table).

OneRoster 1.1 (2017) is what most SIS systems in use still export. Its rostering files have the
1.2 headers except ``users.csv``, where 1.1 carries a user's ``orgSourcedIds`` and one ``role``
instead of 1.2's ``roles.csv``: each org of a 1.1 user becomes a role row (the first org
primary, the others secondary), and the 1.1 role vocabulary maps onto 1.2's, ``administrator``
by the type of the org (:data:`DISTRICT_LEVEL_ORG_TYPES`). 1.1 has no ``userProfiles.csv`` and
no 1.2-only user fields: those are left empty.
"""
from __future__ import annotations

import hashlib
from typing import Iterator

from gateway.oneroster import vocabulary
from gateway.oneroster.csv import binding
from gateway.oneroster.csv.binding import Column, CsvFile
from gateway.oneroster.csv.bundle import Bundle, Manifest, read_manifest
from gateway.oneroster.csv.feeds import (FeedContext, FileFeed, NumberedRows, OpenedFeed,
                                         by_header_name, find_file,
                                         numbered_rows as _counted_rows, same_as_binding)
from gateway.oneroster.csv.problems import Notice, Problem
from gateway.oneroster.csv.reader import check_header, split_list

SUPPORTED_VERSIONS = ("1.1", "1.2")
SUPPORTED = "OneRoster 1.1 or 1.2 (manifest oneroster.version 1.1 or 1.2)"
KNOWN_PROPERTIES = frozenset({"manifest.version", "oneroster.version", "source.systemName",
                              "source.systemCode"})

# The 1.1 CSV binding's data files (1.1 CSV §2.1); its resources files are not imported.
V1P1_FILES = ("academicSessions", "categories", "classes", "classResources", "courses",
              "courseResources", "demographics", "enrollments", "lineItems", "orgs", "resources",
              "results", "users")
V1P1_ROSTERING = ("orgs", "academicSessions", "courses", "classes", "users", "enrollments", "demographics")
V1P1_USERS_HEADER = ("sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role",
                     "username", "userIds", "givenName", "familyName", "middleName", "identifier",
                     "email", "sms", "phone", "agentSourcedIds", "grades", "password")
V1P1_ROLES = frozenset({"administrator", "aide", "guardian", "parent", "proctor", "relative", "student",
                        "teacher"})
# A 1.1 administrator of an org of these types is a 1.2 districtAdministrator; of any other
# (school, department) a siteAdministrator.
DISTRICT_LEVEL_ORG_TYPES = frozenset({"district", "local", "state", "national"})

_V1P1_USERS = CsvFile("users", "users", tuple(Column(name, name) for name in V1P1_USERS_HEADER))
# Role sourcedIds are ours to make (1.1 has no role records); a REST client never sees them.
_MAX_ROLE_ID = 255


def declares_oneroster(names: set[str]) -> str | None:
    """The bundle's manifest file name if it has one (in any case), else None."""
    matches = [name for name in names if name.lower() == binding.MANIFEST]
    return matches[0] if len(matches) == 1 else None


def plan(bundle: Bundle, manifest_name: str, context: FeedContext) -> tuple[str, list[FileFeed]]:
    """Read the manifest and return the bundle's format label and its rostering feeds, in import
    order. Problems of the manifest are reported and validation goes on with what it could tell:
    every data file is still checked (only an unreadable manifest stops it)."""
    names = bundle.names()
    if manifest_name != binding.MANIFEST:
        context.notice(Notice(manifest_name, None, None, None, None,
                              f"file name differs from the binding's {binding.MANIFEST} only in case"))
    problems: list[Problem] = []
    manifest = read_manifest(bundle, manifest_name, problems, context.notice)
    for problem in problems:
        context.problem(problem)
    if manifest is None:
        return "OneRoster CSV", []
    version = _version(bundle, manifest, manifest_name, context)
    files = V1P1_FILES if version == "1.1" else binding.ALL_FILE_NAMES
    _read_modes(manifest, manifest_name, files, version, context)
    located = _locate_files(names, manifest, manifest_name, files, context)
    if version == "1.1":
        feeds = _v1p1_feeds(manifest, located)
    else:
        feeds = [FileFeed(f, manifest.mode(f.name), located[f.name],
                          _v1p2_users if f is binding.USERS else same_as_binding(f))
                 for f in binding.ROSTERING_FILES if f.name in located]
        feeds += [FileFeed(f, manifest.mode(f.name), located[f.name], same_as_binding(f))
                  for f in binding.RESOURCES_CSV_FILES if f.name in located]
    feeds += _gradebook_feeds(manifest, located, version)
    for name in binding.GRADEBOOK_FILES_NOT_IMPORTED:
        if manifest.mode(name) != "absent":
            context.notice(Notice(manifest_name, manifest.lines.get(f"file.{name}"), f"file.{name}",
                                  manifest.mode(name), None,
                                  f"{name}.csv is not imported yet (gradebook files): "
                                  "it was not read"))
    return f"OneRoster {version} CSV", feeds


_VERSION_HINT = {
    "1.1": " (this looks like a OneRoster 1.1 file: is the manifest's oneroster.version right?)",
    "1.2": " (this looks like a OneRoster 1.2 file: is the manifest's oneroster.version right?)",
}


def _users_header(bundle: Bundle, names: set[str]) -> tuple[str, ...] | None:
    found = find_file(names, "users.csv", lambda notice: None)
    if found is None:
        return None
    try:
        with bundle.open_text(found) as handle:
            first = handle.readline(64 * 1024)
    except (UnicodeDecodeError, OSError):
        return None
    return tuple(name.strip().lstrip("\ufeff") for name in first.strip("\r\n").split(","))


def _version_from_files(bundle: Bundle) -> str | None:
    """The version the files themselves show: 1.1's users.csv carries orgSourcedIds and role."""
    header = _users_header(bundle, bundle.names())
    if header is None:
        return None
    return "1.1" if "orgSourcedIds" in header and "role" in header else "1.2"


def _version(bundle: Bundle, manifest: Manifest, name: str, context: FeedContext) -> str:
    """The OneRoster version to read the bundle as. A missing version is taken from the files
    when they show it (noted); a version the gateway does not read is a problem, and the files
    are still checked, as the version they look like."""
    declared = manifest.properties.get("oneroster.version")
    line = manifest.lines.get("oneroster.version")
    shown = _version_from_files(bundle)
    if declared in SUPPORTED_VERSIONS:
        version = declared
    elif declared == "1.2.1":
        # The 1.2.1 corrections kept oneroster.version 1.2; a manifest that says 1.2.1 means it.
        context.notice(Notice(name, line, "oneroster.version", declared, "1.2",
                              "the 1.2.1 binding's manifests say 1.2"))
        version = "1.2"
    elif declared is None or declared == "":
        version = shown or "1.2"
        context.notice(Notice(name, None, "oneroster.version", None, version,
                              f"the manifest has no oneroster.version; the files were read as "
                              f"OneRoster {version}" + (" (users.csv's header)" if shown else "")))
    else:
        what = "OneRoster 1.0 bundles are not supported" if declared.startswith("1.0") \
            else f"OneRoster {declared} is not a version the gateway reads"
        context.problem(Problem(name, line, "oneroster.version", declared,
                                f"{SUPPORTED}; {what}: export the bundle as OneRoster 1.2 (or 1.1)"))
        version = shown or "1.2"
    manifest_version = manifest.properties.get("manifest.version")
    if manifest_version is None:
        context.notice(Notice(name, None, "manifest.version", None, binding.MANIFEST_VERSION,
                              "the manifest has no manifest.version; read as 1.0"))
    elif manifest_version != binding.MANIFEST_VERSION:
        context.problem(Problem(name, manifest.lines.get("manifest.version"), "manifest.version",
                                manifest_version, f"manifest.version = {binding.MANIFEST_VERSION}"))
    return version


def _read_modes(manifest: Manifest, name: str, files: tuple[str, ...], version: str,
                context: FeedContext) -> None:
    """Set each data file's mode from the manifest's ``file.<name>`` rows; note the properties
    the binding does not know."""
    by_lower = {f.lower(): f for f in files}
    for key, value in manifest.properties.items():
        line = manifest.lines[key]
        if not key.startswith("file."):
            if key not in KNOWN_PROPERTIES:
                context.notice(Notice(name, line, "propertyName", key, None,
                                      f"not a property of the OneRoster {version} manifest; ignored"))
            continue
        file_name = key[len("file."):]
        if file_name not in files:
            fixed = by_lower.get(file_name.lower())
            if fixed is None:
                context.notice(Notice(name, line, "propertyName", key, None,
                                      f"not a file of the OneRoster {version} CSV binding; ignored"))
                continue
            context.notice(Notice(name, line, "propertyName", key, f"file.{fixed}",
                                  "differs from the binding's property only in case"))
            file_name = fixed
        mode = value
        if mode not in binding.FILE_MODES:
            if mode.lower() in binding.FILE_MODES:
                context.notice(Notice(name, line, "value", mode, mode.lower(),
                                      "differs from the binding's value only in case"))
                mode = mode.lower()
            else:
                context.problem(Problem(name, line, "value", value, f"absent, bulk or delta for {key}"))
                # Checked as a bulk file all the same, if the bundle holds it.
                mode = "bulk"
        manifest.modes[file_name] = mode


def _locate_files(names: set[str], manifest: Manifest, name: str, files: tuple[str, ...],
                  context: FeedContext) -> dict[str, str]:
    """The bundle's file for each data file listed as bulk or delta (checking both directions:
    a listed file must be there, a file there must be listed)."""
    located: dict[str, str] = {}
    for file_name in files:
        mode = manifest.mode(file_name)
        filename = f"{file_name}.csv"
        actual = find_file(names, filename, context.notice) if mode != "absent" else (
            filename if filename in names else None)
        if mode != "absent" and actual is None:
            context.problem(Problem(name, manifest.lines.get(f"file.{file_name}"), f"file.{file_name}", mode,
                                    f"{filename} in the bundle, since the manifest lists it as {mode}"))
        elif mode == "absent" and actual is not None:
            context.problem(Problem(name, manifest.lines.get(f"file.{file_name}"), f"file.{file_name}",
                                    manifest.modes.get(file_name, "(missing)"),
                                    f"bulk or delta, since {filename} is in the bundle"))
        elif actual is not None:
            located[file_name] = actual
    known = {f"{f}.csv".lower() for f in files} | {binding.MANIFEST}
    for other in sorted(names):
        if other.lower() not in known:
            context.notice(Notice(other, None, None, None, None,
                                  "not a file of the OneRoster CSV binding; it was not read"))
    return located


def _v1p1_feeds(manifest: Manifest, located: dict[str, str]) -> list[FileFeed]:
    feeds: list[FileFeed] = []
    for csv_file in binding.ROSTERING_FILES:
        if csv_file.name == "roles":
            if "users" in located:
                mode = manifest.mode("users")
                feeds.append(FileFeed(csv_file, mode, located["users"], _v1p1_roles,
                                      replace_by="user_sourced_id" if mode == "delta" else None,
                                      derived=True))
        elif csv_file.name == "users":
            if "users" in located:
                feeds.append(FileFeed(csv_file, manifest.mode("users"), located["users"], _v1p1_users))
        elif csv_file.name in V1P1_ROSTERING and csv_file.name in located:
            feeds.append(FileFeed(csv_file, manifest.mode(csv_file.name), located[csv_file.name],
                                  same_as_binding(csv_file)))
    return feeds


def _gradebook_feeds(manifest: Manifest, located: dict[str, str], version: str) -> list[FileFeed]:
    """The gradebook files of a 1.2 or 1.1 bundle, read by header name into the 1.2 files (1.1
    has no scoreScales.csv, and names fewer columns: see binding.V1P1_GRADEBOOK_HEADERS)."""
    feeds = []
    for csv_file in binding.GRADEBOOK_CSV_FILES:
        if csv_file.name not in located:
            continue
        expected = binding.V1P1_GRADEBOOK_HEADERS.get(csv_file.name) if version == "1.1" else None
        feeds.append(FileFeed(csv_file, manifest.mode(csv_file.name), located[csv_file.name],
                              by_header_name(csv_file, expected)))
    return feeds


def _v1p2_users(header: list[str], context: FeedContext) -> OpenedFeed:
    """1.2 users.csv as is; a header problem says so when the header is 1.1's."""
    opened = same_as_binding(binding.USERS)(header, context)
    if opened.problems and "orgSourcedIds" in header and "role" in header:
        opened.problems = [Problem(p.file, p.line, p.column, p.value, p.expected + _VERSION_HINT["1.1"])
                           for p in opened.problems]
    return opened


def _check_v1p1_users_header(header: list[str]) -> tuple[list[Problem], list[str]]:
    problems, metadata = check_header(_V1P1_USERS, header)
    if problems and tuple(header[:len(binding.USERS.header)]) == binding.USERS.header:
        problems = [Problem(p.file, p.line, p.column, p.value, p.expected + _VERSION_HINT["1.2"])
                    for p in problems]
    return problems, metadata


def _v1p1_users(header: list[str], context: FeedContext) -> OpenedFeed:
    """1.1 users.csv as 1.2 users rows: the same values, without orgSourcedIds and role (they
    become roles), the 1.2-only columns empty."""
    problems, metadata = _check_v1p1_users_header(header)
    if problems:
        return OpenedFeed(problems)
    width = len(header)
    position = {name: i for i, name in enumerate(V1P1_USERS_HEADER)}
    # An index one past the row's end reads the empty string appended to each row.
    picks = [position.get(column.name, width) for column in binding.USERS.columns]
    picks += range(len(V1P1_USERS_HEADER), width)

    def rows(source: Iterator[list[str]]) -> NumberedRows:
        for line, fields in _counted_rows(source, width, "users.csv", context.problem):
            fields.append("")
            yield line, [fields[i] for i in picks]
    return OpenedFeed([], metadata, rows)


def role_sourced_id(user: str, org: str) -> str:
    """The sourcedId of the role a 1.1 user holds in one of its orgs: stable across imports,
    so that a re-import changes nothing and a delta retires exactly the roles a user lost."""
    sourced_id = f"{user}@{org}"
    if len(sourced_id) <= _MAX_ROLE_ID:
        return sourced_id
    return "role-" + hashlib.blake2b(sourced_id.encode(), digest_size=20).hexdigest()


def _v1p1_roles(header: list[str], context: FeedContext) -> OpenedFeed:
    """1.1 users.csv as 1.2 roles rows: one per org in orgSourcedIds, the first primary."""
    problems, _ = _check_v1p1_users_header(header)
    if problems:
        return OpenedFeed([], rows=lambda source: iter(()))  # reported by the users feed
    width = len(header)
    sid, status, modified = 0, 1, 2
    orgs_at, role_at = V1P1_USERS_HEADER.index("orgSourcedIds"), V1P1_USERS_HEADER.index("role")
    known = {value.lower(): value for value in V1P1_ROLES | vocabulary.ROLES}
    expected_role = ("a OneRoster 1.1 role: " + ", ".join(sorted(V1P1_ROLES))
                     + " (or a 1.2 role, or an ext: value)")

    def role_of(raw: str, line: int) -> str | None:
        """The 1.2 role for a 1.1 value (administrator still to be placed by org), noted when
        only its case differs, or None after reporting a value that is no role."""
        value = known.get(raw.lower())
        if value is None:
            if raw and vocabulary.EXTENSION_VALUE.fullmatch(raw):
                return raw
            context.problem(Problem("users.csv", line, "role", raw, expected_role))
            return None
        if value != raw:
            context.notice(Notice("users.csv", line, "role", raw, value,
                                  "differs from the binding's value only in case"))
        return value

    def placed(role: str, org: str) -> str:
        if role != "administrator":
            return role
        return ("districtAdministrator" if context.org_type(org) in DISTRICT_LEVEL_ORG_TYPES
                else "siteAdministrator")

    def rows(source: Iterator[list[str]]) -> NumberedRows:
        for line, fields in _counted_rows(source, width, "users.csv", None):
            user = fields[sid]
            orgs = list(dict.fromkeys(split_list(fields[orgs_at])))
            if not orgs:
                context.problem(Problem("users.csv", line, "orgSourcedIds", fields[orgs_at],
                                        "at least one org sourcedId (each becomes one of the user's roles)"))
                continue
            role = role_of(fields[role_at], line)
            if role is None:
                continue
            for position, org in enumerate(orgs):
                yield line, [role_sourced_id(user, org), fields[status], fields[modified], user,
                             "primary" if position == 0 else "secondary", placed(role, org), "", "", org, ""]
    return OpenedFeed([], [], rows, {"sourcedId": "sourcedId", "userSourcedId": "sourcedId",
                                     "roleType": "orgSourcedIds", "role": "role",
                                     "orgSourcedId": "orgSourcedIds"})
