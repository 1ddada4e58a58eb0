""":class:`PolicyVisibility`: the :class:`~gateway.sharing.visibility.Visibility` of an app whose
district has set a sharing policy for it (or has not: then nothing is visible).

Rows are scoped in SQL (:mod:`gateway.sharing.scope`); fields are granted, masked, pseudonymized
or withheld per entity (:mod:`gateway.sharing.policy`); ids are pseudonymized consistently in the
records and in every reference inside them (:mod:`gateway.sharing.pseudonyms`); what leaves is
recorded in the district's ledger (:mod:`gateway.sharing.ledger`).

For the channels that use it:

- ``where`` applies to the records a channel returns *and* to the rows it reads to build them:
  an org's or academic session's ``children`` must be read with ``where("org"/"academicSession",
  ...)`` too, or a school out of scope would show up as a district's child. References stored on
  a visible record itself (a user's ``primaryOrg`` and ``roles[].org``, a course's
  ``schoolYear``) are that record's data and are sent as they are (pseudonymized if their type
  is), even when the record they name is out of scope: fetching it by id is then a 404.
- A pseudonymized ``sourcedId`` is not filterable (a ``~`` or ``<`` filter, or a sort, would
  reveal the clear id); ids in paths go through ``resolve_id``, which answers None for anything
  that is not this app's pseudonym, so a by-id read of a clear id is a 404 like a missing record.
- ``disclosed`` expects ``stored_ids`` aligned with ``records`` (users and demographics: the
  person's sourcedId; enrollments: the enrollment's, whose user is then taken from the record's
  ``user`` reference, or read from the store when ``fields=`` left it out).
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import Table, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gateway.caching import LRUCache, Unshared
from gateway.oneroster.schemas import ALL_ENTITIES, RESOURCE_ENTITIES
from gateway.sharing.ledger import LedgerWriter
from gateway.sharing.policy import (BASE_FIELDS, ID_NAMESPACES, PEOPLE_ENTITIES,
                                    PROFILE_NAMESPACE, Policy)
from gateway.sharing.pseudonyms import Pseudonymizer
from gateway.sharing import snapshots
from gateway.sharing.scope import USER_MEMBER, Scope
from gateway.store.models import Enrollment, utcnow
from gateway.store.rostering import Driver

GRADE_ENTITIES = frozenset({"result", "assessmentResult"})
"""Gradebook entities whose records are students' grades: what leaves of them is a disclosure
about the students, recorded like a page of users."""
from gateway.store.sharing import ScopeMember

_MEMBERS = ScopeMember.__table__

PSEUDONYMOUS_EMAIL_DOMAIN = "pseudonym.invalid"
"""The domain of pseudonymized emails: they stay well-formed, and ``.invalid`` (RFC 2606) never
delivers."""

_Op = Callable[[Any], Any]


def _mask_initial(value: Any) -> Any:
    return value[:1] + "." if isinstance(value, str) and value else value


def _mask_year(value: Any) -> Any:
    # A date keeps its year and stays a date (YYYY-01-01), so the field still validates.
    return value[:4] + "-01-01" if isinstance(value, str) and len(value) >= 4 else value


_MASKS: Mapping[str, _Op] = {"initial": _mask_initial, "year": _mask_year}


_RESOURCE_FIELDS = {name: frozenset(n for n, spec in entity.fields.items() if spec.served)
                    for name, entity in RESOURCE_ENTITIES.items()}


class PolicyVisibility:
    """What one app may see of one district, by the district's policy for it.

    ``policy`` None (no policy set) hides everything. ``pseudonyms`` encodes this app's ids;
    ``ledger`` receives what :meth:`disclosed` reports (None: nothing is recorded, for previews).
    Build one per request with :func:`gateway.sharing.visibility_for`.
    """

    def __init__(self, policy: Policy | None, *, session: Session, app_id: int, district_id: int,
                 pseudonyms: Pseudonymizer, ledger: LedgerWriter | None,
                 closed: str | None = None,
                 cache_identity: tuple[Any, ...] | None = None,
                 members: ColumnElement[Any] | None = None,
                 clauses: dict[tuple[str, Table], ColumnElement[bool]] | None = None,
                 memo: dict[str, dict] | None = None) -> None:
        # A policy outside its contract window shares nothing: the visibility is that of no
        # policy, and ``closed`` says why.
        self.closed = closed
        self.policy = None if closed is not None else policy
        policy = self.policy
        self.session = session
        self.app_id = app_id
        self.district_id = district_id
        self.pseudonyms = pseudonyms
        self.ledger = ledger
        # ``members``: the policy's scope snapshot (gateway.sharing.snapshots), when it has one.
        self.members = members
        self.scope = Scope(policy, district_id, session.get_bind().dialect.name, members=members)
        # Predicates by (entity, table): ``clauses`` shares them between the requests of one
        # policy version (they name the app, the district and the snapshot, nothing else).
        self._where: dict[tuple[str, Table], ColumnElement[bool]] = {} if clauses is None else clauses
        # Field plans, their verbatim flags and ledger labels: ``memo`` shares them between the
        # requests of one policy version (they depend on the policy and the app's pseudonyms).
        memo = {} if memo is None else memo
        self._plans: dict[str, dict[str, _Op | None]] = memo.setdefault("plans", {})
        self._verbatim: dict[str, bool] = memo.setdefault("verbatim", {})  # entity -> transforms nothing
        self._labels: dict[str, dict[str, str]] = memo.setdefault("labels", {})
        self._references = _References(self)
        # A hashable naming exactly these predicates in the page cache's keys: the policy's
        # version when the caller knows it (shared by the requests of that version), else one of
        # this visibility's own (what it caches serves only itself).
        self.cache_identity = (cache_identity if cache_identity is not None
                               else Unshared("unversioned policy"))

    def refusal(self) -> str | None:
        """Why the app may see nothing of the district right now (its contract is not in
        force), else None."""
        return self.closed

    def preferred_names(self) -> bool:
        """The policy's ``names`` choice (preferred by default)."""
        return self.policy is None or self.policy.names == "preferred"

    def shares_launch_platform(self) -> bool:
        """The policy's ``shareLaunchPlatform`` (off without one)."""
        return self.policy is not None and self.policy.share_launch_platform

    # -- rows ---------------------------------------------------------------------------------

    def where(self, entity: str, table: Table) -> ColumnElement[bool] | None:
        """The rows of ``table`` (the store table of ``entity``) in the policy's scope."""
        key = (entity, table)
        found = self._where.get(key)
        if found is None:
            found = self._where[key] = self.scope.where(entity, table)
        return found

    def driver(self, entity: str, table: Table) -> Driver | None:
        """The snapshot's list of visible users, to read pages of users through (see
        :class:`~gateway.store.rostering.Driver`); None for other entities, which are mostly in
        scope or reached through few link rows, and without a snapshot."""
        if entity != "user" or self.members is None or self.policy.whole_district:
            return None
        return _user_driver(self.members)

    # -- fields -------------------------------------------------------------------------------

    def fields(self, entity: str) -> frozenset[str] | None:
        """The fields of ``entity`` that may leave (always sourcedId, status, dateLastModified).
        A resource's fields all leave when there is a policy: they describe content, not a
        person, and :meth:`where` already keeps to the resources of what the app may see."""
        if self.policy is not None and entity in RESOURCE_ENTITIES:
            return _RESOURCE_FIELDS[entity]
        if self.policy is None or entity not in self.policy.fields:
            return BASE_FIELDS
        return self.policy.fields[entity]

    def filterable(self, entity: str) -> frozenset[str] | None:
        """Shared fields whose values leave as stored: not masked, not pseudonymized, and not a
        reference (or list of objects) carrying pseudonymized ids."""
        allowed = self.fields(entity)
        if self.policy is None:
            return frozenset()
        plan = self._plan(entity)
        return frozenset(name for name in allowed if plan.get(name) is None)

    def treatment(self, entity: str, field: str) -> str:
        """``shared``, ``masked:<kind>``, ``pseudonymized`` or ``withheld``."""
        if self.policy is None:
            return "withheld"
        return self.policy.treatment(entity, field)

    # -- ids ----------------------------------------------------------------------------------

    def id_namespace(self, entity: str) -> str | None:
        """The pseudonym namespace of ``entity``'s ids, or None if they leave as stored."""
        return _IdNamespaces(self.policy)(entity)

    def external_id(self, entity: str, stored_id: str) -> str:
        """The id the app knows ``entity``'s record ``stored_id`` by."""
        namespace = self.id_namespace(entity)
        return self.pseudonyms.encode(namespace, stored_id) if namespace else stored_id

    def resolve_id(self, entity: str, external_id: str) -> str | None:
        """The stored sourcedId behind an id the app sent; None without a policy, for a clear id
        where ids are pseudonymized, and for anything that is not this app's pseudonym."""
        if self.policy is None:
            return None
        namespace = self.id_namespace(entity)
        if namespace is None:
            return external_id
        return self.pseudonyms.decode(namespace, external_id)

    # -- records ------------------------------------------------------------------------------

    def present(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        """The allowed fields of ``record``, masked and pseudonymized as the policy says,
        references and nested ids included; every other field is dropped. A record that holds
        only allowed fields none of which is transformed is returned as it is."""
        plan = self._plan(entity)
        if self._verbatim[entity] and plan.keys() >= record.keys():
            return record
        out: dict[str, Any] = {}
        for name, value in record.items():
            if name not in plan:
                continue
            op = plan[name]
            out[name] = value if op is None else op(value)
        return out

    def _plan(self, entity: str) -> dict[str, _Op | None]:
        """Field name -> the operation to apply (None: copy as is). Absent names are withheld."""
        plan = self._plans.get(entity)
        if plan is None:
            plan = self._plans[entity] = self._compile(entity)
            self._verbatim[entity] = all(op is None for op in plan.values())
        return plan

    def _compile(self, entity: str) -> dict[str, _Op | None]:
        if self.policy is None or entity not in ALL_ENTITIES:
            return {}
        specs = ALL_ENTITIES[entity].fields
        plan: dict[str, _Op | None] = {}
        for name in self.fields(entity):
            spec = specs.get(name)
            if spec is None:
                continue
            treatment = self.policy.treatment(entity, name)
            op: _Op | None = None
            if name == "sourcedId":
                namespace = self.id_namespace(entity)
                if namespace:
                    op = self._encoder(namespace)
            elif treatment == "pseudonymized":
                op = self._pseudonymize_field(entity, name)
            elif treatment.startswith("masked:"):
                op = _MASKS[treatment.split(":", 1)[1]]
            elif spec.kind == "ref" and self.id_namespace(spec.ref_type):
                op = self._references.ref_op
            elif spec.kind == "refs" and self.id_namespace(spec.ref_type):
                op = self._references.refs_op
            elif entity == "user" and name == "roles" and (
                    self.id_namespace("org") or self.id_namespace("user")):
                op = self._references.roles_op
            elif entity == "user" and name == "userProfiles" and self.id_namespace("user"):
                op = self._references.profiles_op
            plan[name] = op
        return plan

    def _encoder(self, namespace: str) -> _Op:
        encode = self.pseudonyms.encode
        return lambda value: encode(namespace, value) if isinstance(value, str) else value

    def _pseudonymize_field(self, entity: str, name: str) -> _Op:
        encode = self.pseudonyms.encode
        namespace = f"{entity}.{name}"
        if entity == "user" and name == "userIds":
            return lambda items: [dict(item, identifier=encode(
                f"user.userIds.{item.get('type', '')}", item["identifier"]))
                if isinstance(item, dict) and isinstance(item.get("identifier"), str) else item
                for item in items]
        if entity == "user" and name == "email":
            return lambda value: (f"{encode(namespace, value)}@{PSEUDONYMOUS_EMAIL_DOMAIN}"
                                  if isinstance(value, str) and value else value)
        return self._encoder(namespace)

    # -- the ledger ---------------------------------------------------------------------------

    def field_label(self, entity: str, field: str) -> str:
        """How ``field`` is named in the ledger: ``name``, ``name:initial``, ``name:pseudonym``."""
        labels = self._labels.setdefault(entity, {})
        label = labels.get(field)
        if label is None:
            treatment = self.treatment(entity, field)
            op = self._plan(entity).get(field)
            if treatment.startswith("masked:"):
                label = f"{field}:{treatment.split(':', 1)[1]}"
            elif op is not None:
                label = f"{field}:pseudonym"
            else:
                label = field
            labels[field] = label
        return label

    def verbatim(self, entity: str) -> bool:
        """Whether :meth:`present` leaves every record of ``entity`` exactly as it is: every
        served field allowed and none transformed (a page can then be sent as rendered)."""
        plan = self._plan(entity)
        if not self._verbatim[entity] or entity not in ALL_ENTITIES:
            return False
        return all(name in plan for name, spec in ALL_ENTITIES[entity].fields.items()
                   if spec.served)

    def disclosed_fields(self, channel: str, endpoint: str, entity: str, names: Iterable[str],
                         record_count: int, users: Iterable[str]) -> None:
        """:meth:`disclosed` for a page sent as ready bytes: ``names`` are the top-level fields
        that left (as sent), ``users`` the stored sourcedIds of the people the records are about
        (an enrollment's user, a user's or demographics record's own id)."""
        if self.ledger is None or entity not in PEOPLE_ENTITIES or not record_count:
            return
        fields = sorted(self.field_label(entity, name) for name in names)
        self.ledger.record(channel=channel, endpoint=endpoint, entity=entity, fields=fields,
                           users=users, record_count=record_count)

    def disclosed(self, channel: str, endpoint: str, entity: str,
                  records: Iterable[Mapping[str, Any]], stored_ids: Iterable[str]) -> None:
        """Record, in the request's transaction, that ``records`` (as sent) left through
        ``channel``: one ledger entry per call, for entities about people (users, enrollments,
        demographics) and students' grades (gradebook results, whose ``stored_ids`` are the
        students' sourcedIds) only; an empty response records nothing."""
        if self.ledger is None or (entity not in PEOPLE_ENTITIES and entity not in GRADE_ENTITIES):
            return
        records = list(records)
        if not records:
            return
        stored_ids = list(stored_ids)
        names: set[str] = set()
        for record in records:
            names.update(record.keys())
        fields = sorted(self.field_label(entity, name) for name in names)
        if entity == "enrollment":
            users = self._enrolled_users(records, stored_ids)
        else:
            # A user's or a demographics record's stored id is the person's sourcedId.
            users = stored_ids
        self.ledger.record(channel=channel, endpoint=endpoint, entity=entity, fields=fields,
                           users=users, record_count=len(records))

    def _enrolled_users(self, records: list[Mapping[str, Any]], stored_ids: list[str]) -> list[str]:
        """The stored sourcedIds of the users of enrollment records: from the records' ``user``
        references when they were all sent, else read from the store by enrollment id."""
        users: list[str] = []
        for record in records:
            ref = record.get("user")
            sent = ref.get("sourcedId") if isinstance(ref, Mapping) else None
            stored = self.resolve_id("user", sent) if isinstance(sent, str) else None
            if stored is None:
                break
            users.append(stored)
        else:
            return users
        table = Enrollment.__table__
        return list(self.session.execute(select(table.c.user_sourced_id).where(
            table.c.district_id == self.district_id,
            table.c.sourced_id.in_(stored_ids))).scalars())


class _References:
    """The operations that pseudonymize ids inside references, roles and profiles. They hold the
    policy's id choices and the pseudonyms, never the visibility (whose session is the
    request's), so field plans made of them can be shared between requests."""

    def __init__(self, visibility: "PolicyVisibility") -> None:
        self.id_namespace = functools.lru_cache(maxsize=None)(
            _IdNamespaces(visibility.policy).__call__)
        self.pseudonyms = visibility.pseudonyms

    def ref(self, ref: Mapping[str, Any]) -> dict[str, Any]:
        """A reference with its id (and href) pseudonymized, when its type's ids are."""
        namespace = self.id_namespace(ref.get("type", ""))
        sourced_id = ref.get("sourcedId")
        if namespace is None or not isinstance(sourced_id, str):
            return dict(ref)
        pseudonym = self.pseudonyms.encode(namespace, sourced_id)
        out = dict(ref, sourcedId=pseudonym)
        href = ref.get("href")
        if isinstance(href, str):
            # The href ends with the (URL-escaped) sourcedId, which never contains "/" escaped.
            out["href"] = href.rsplit("/", 1)[0] + "/" + pseudonym
        return out

    def ref_op(self, value: Any) -> Any:
        """``ref`` for a field holding one reference."""
        return self.ref(value) if isinstance(value, Mapping) else value

    def refs_op(self, value: Any) -> Any:
        """``ref`` for each reference of a list."""
        return [self.ref(item) if isinstance(item, Mapping) else item for item in value]

    def profile_id(self, value: Any) -> Any:
        """A user profile's id, pseudonymized with the user's ids."""
        if self.id_namespace("user") and isinstance(value, str):
            return self.pseudonyms.encode(PROFILE_NAMESPACE, value)
        return value

    def roles_op(self, roles: Any) -> Any:
        """A user's roles with their org references and profile ids pseudonymized."""
        out = []
        for role in roles:
            role = dict(role)
            if isinstance(role.get("org"), Mapping):
                role["org"] = self.ref(role["org"])
            if "userProfile" in role:
                role["userProfile"] = self.profile_id(role["userProfile"])
            out.append(role)
        return out

    def profiles_op(self, profiles: Any) -> Any:
        """A user's profiles with their ids pseudonymized."""
        return [dict(profile, profileId=self.profile_id(profile["profileId"]))
                if isinstance(profile, Mapping) and "profileId" in profile else profile
                for profile in profiles]



class _IdNamespaces:
    """:meth:`PolicyVisibility.id_namespace` of one policy."""

    def __init__(self, policy: Policy | None) -> None:
        self.policy = policy

    def __call__(self, entity: str) -> str | None:
        if self.policy is None or entity not in ID_NAMESPACES:
            return None
        return ID_NAMESPACES[entity] if self.policy.id_pseudonymized(entity) else None


class PolicyCache:
    """Parsed policies by stored version: what one application (one process) reuses across
    requests instead of reading each request's policy document. Bounded and thread-safe."""

    def __init__(self, size: int = 1024) -> None:
        # Values are one-tuples: "this version has no policy" (None) is worth remembering too.
        self._policies = LRUCache(size)
        self._clauses = LRUCache(size)

    def clauses(self, key: Any) -> dict[tuple[str, Table], ColumnElement[bool]]:
        """The row predicates built so far for ``key`` (a policy version, with or without its
        snapshot), to be filled and reused by every request of that version. Building them
        costs more than running them; a dict's item assignment is atomic, and two threads
        building the same predicate build equal ones."""
        found = self._clauses.get(key)
        if found is None:
            found = {}
            self._clauses.put(key, found)
        return found

    def memo(self, key: Any) -> dict[str, dict]:
        """The field plans and ledger labels built so far for ``key`` (a policy version and the
        app's pseudonym key), shared like :meth:`clauses`."""
        return self.clauses(("memo", key))  # type: ignore[return-value]

    def policy(self, key: Any, load: Callable[[], Policy | None]) -> Policy | None:
        """The policy stored under ``key``, loaded on first use."""
        found = self._policies.get(key)
        if found is None:
            found = (load(),)
            self._policies.put(key, found)
        return found[0]


@functools.lru_cache(maxsize=4096)
def _user_driver(members: ColumnElement[Any]) -> Driver:
    """The driver of ``members``' users (statement parts are immutable: building the alias and
    its columns anew cost every page of a policy app about 0.1 ms of CPU)."""
    m = _MEMBERS.alias("page_member")
    return Driver(m, m.c.row_id, (m.c.snapshot_id == members, m.c.kind == USER_MEMBER))


def visibility_for(session: Session, *, app_id: int, district_id: int, secret_key: str | bytes,
                   clock: Callable[[], dt.datetime] = utcnow,
                   policy_version: tuple[Any, ...] | None = None,
                   cache: PolicyCache | None = None,
                   deferred_ledger: bool = False,
                   ledger: LedgerWriter | None = None) -> PolicyVisibility:
    """The visibility of ``app_id`` in ``district_id``: its stored policy (none: nothing visible),
    its pseudonyms (keyed from ``secret_key``) and a ledger writer in ``session``.

    With a ``cache`` and the ``policy_version`` the caller just read (row id, revision, last
    change; an :class:`~gateway.oauth.AccessGrant` carries it), the parsed policy of that version
    is reused instead of read, and names the visibility's predicates for the page cache.
    ``deferred_ledger``: disclosures are noted and appended by ``visibility.ledger.flush()``
    (see :class:`LedgerWriter`). ``ledger``: a writer of the caller's to record in instead (a
    CSV export's :class:`~gateway.sharing.ledger.SpooledLedgerWriter`).
    """
    from gateway.sharing.service import load_policy

    def load() -> Policy | None:
        return load_policy(session, app_id, district_id)

    identity = None
    if cache is not None and policy_version is not None:
        # The predicates depend on the policy and the district only: a new version is a new key.
        identity = ("policy", app_id, district_id, tuple(policy_version))
        policy = cache.policy(identity, load)
    else:
        policy = load()
    closed = None if policy is None else policy.contract_refusal(clock().date())
    if closed is not None:
        # Outside the contract: the predicates of no policy, under a key of their own.
        policy = None
        identity = None if identity is None else (*identity, "closed")
    members = None
    if snapshots.needs_snapshot(policy):
        if snapshots.snapshot_ready(session, app_id, district_id):
            members = snapshots.current_snapshot_id(app_id, district_id)
        else:
            # This request reads through the live predicates (same rows); the next ones will
            # find the snapshot.
            snapshots.build_missing_snapshot(session.get_bind(), app_id, district_id)
    return PolicyVisibility(
        policy, session=session, app_id=app_id, district_id=district_id,
        pseudonyms=Pseudonymizer(secret_key, app_id, district_id),
        ledger=ledger if ledger is not None else LedgerWriter(
            session, app_id=app_id, district_id=district_id, clock=clock,
            deferred=deferred_ledger),
        closed=closed, cache_identity=identity, members=members,
        clauses=None if identity is None else cache.clauses((identity, members is not None)),
        memo=None if identity is None else cache.memo((identity, _key_id(secret_key))))


@functools.lru_cache(maxsize=8)
def _key_id(secret_key: str | bytes) -> str:
    # Plans hold the pseudonym encoders made from the key: a memo is per key (tests use several).
    raw = secret_key.encode() if isinstance(secret_key, str) else secret_key
    return hashlib.sha256(raw).hexdigest()[:16]
