"""Sharing policy documents: their JSON schema, their meaning, and parsing them into a :class:`Policy`.

A district writes one policy per app. The published schema (``specs/sharing-policy.schema.json``,
the committed output of :func:`policy_schema`) says what a document may contain; :func:`parse_policy`
validates a document against it, then checks what a schema cannot (a masked field must be shared,
the contract must not end before it starts...), and reports every problem with its location.

The document, with its defaults::

    {"schools": ["*"],            # required: "*" or org sourcedIds
     "grades": ["*"],             # grade codes ("03", "KG"...) or "*"
     "classes": ["*"],            # class sourcedIds or "*"
     "allUsers": false,           # also staff and others (every role) at in-scope schools
     "names": "preferred",        # LTI given_name/family_name/name: preferred or legal names
     "shareLaunchPlatform": false,  # LMS-brokered launches name the LMS (custom claim)
     "classRules": [              # optional: a class is in scope if it matches one rule, and a
       {"subject": "Mathematics", #   rule matches if all its conditions hold: a subject of the
        "courseCode": "M3",       #   class or its course; its course's code;
        "titleContains": "math"}  #   its title, case-insensitively
     ],
     "fields": {"user": ["*"], "demographics": []},
     "mask": {"user.familyName": "initial"},
     "pseudonymize": ["user.sourcedId"],
     "scopes": ["https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"],
     "contract": {"start": "2026-08-01", "end": "2027-07-31"},
     "description": "free text for the district's own records"}

Field grants (``fields``), per entity:

- ``sourcedId``, ``status`` and ``dateLastModified`` always leave (a sourcedId may be pseudonymized).
- ``"*"`` grants every field except the sensitive ones, which must be named: a user's contact
  fields (``email``, ``phone``, ``sms``), ``agents``, ``userProfiles`` (other vendors' accounts)
  and every entity's open ``metadata`` extension. ``"*"`` under ``demographics`` grants all the
  demographic fields (naming the entity is the explicit grant) but still not ``metadata``.
- An entity the document does not list gets ``["*"]``, except ``demographics``: nothing.

Masks: ``initial`` keeps a string's first character (``Simpson`` -> ``S.``); ``year`` keeps a date's
year (``2018-05-09`` -> ``2018-01-01``, still a valid date). Pseudonymized fields become opaque
per-app values (see :mod:`gateway.sharing.pseudonyms`); ``<entity>.sourcedId`` pseudonymizes that
entity's ids everywhere they appear, references included (a demographics record's sourcedId is its
user's, so it follows ``user.sourcedId``; user profile ids follow it too). A masked or pseudonymized
field must be shared, and cannot be both.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import functools
import json
import os
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from jsonschema import Draft202012Validator

from gateway.errors import UsageError
from gateway.oneroster.schemas import ENTITIES
from gateway.oneroster.vocabulary import ROSTERING_SCOPES

ALL = "*"
SCHEMA_ID = "urn:k12-gateway:schema:sharing-policy:1"
SCHEMA_FILE_NAME = "sharing-policy.schema.json"

ENTITY_NAMES: tuple[str, ...] = tuple(ENTITIES)
"""The entities a policy talks about: org, academicSession, course, class, user, enrollment,
demographics."""

BASE_FIELDS = frozenset({"sourcedId", "status", "dateLastModified"})
"""Fields that always leave: without them a record cannot be named or synchronized."""

SENSITIVE_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType({
    name: frozenset({"metadata"} | ({"email", "phone", "sms", "agents", "userProfiles"}
                                    if name == "user" else set()))
    for name in ENTITY_NAMES})
"""Fields that ``"*"`` does not grant: they must be named."""

PEOPLE_ENTITIES = frozenset({"user", "enrollment", "demographics"})
"""Entities whose records are about a person (what the disclosure ledger records)."""

MASKS: Mapping[str, str] = MappingProxyType({"initial": "string", "year": "date"})
"""Mask kinds, and the kind of field each applies to."""

ID_NAMESPACES: Mapping[str, str] = MappingProxyType({
    "org": "org", "academicSession": "academicSession", "course": "course", "class": "class",
    "user": "user", "enrollment": "enrollment", "demographics": "user"})
"""The pseudonym namespace of each entity's sourcedId (and of references of that ``type``)."""

PROFILE_NAMESPACE = "userProfile"
"""User profile ids (``userProfiles[].profileId``, ``roles[].userProfile``): pseudonymized with
the user ids, since SIS profile ids are usually built from them."""

DEFAULT_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    name: (() if name == "demographics" else (ALL,)) for name in ENTITY_NAMES})


def _served(entity: str) -> tuple[str, ...]:
    return tuple(name for name, spec in ENTITIES[entity].fields.items() if spec.served)


SERVED_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: _served(name) for name in ENTITY_NAMES})
"""Every field each entity serves, in schema order."""


def _maskable() -> dict[str, str]:
    found: dict[str, str] = {}
    for entity in ENTITY_NAMES:
        for name, spec in ENTITIES[entity].fields.items():
            if not spec.served or name in BASE_FIELDS:
                continue
            for mask, kind in MASKS.items():
                if spec.kind == kind:
                    found.setdefault(f"{entity}.{name}", mask)
    return found


def _pseudonymizable() -> tuple[str, ...]:
    found = [f"{entity}.sourcedId" for entity in ENTITY_NAMES if entity != "demographics"]
    for entity in ENTITY_NAMES:
        for name, spec in ENTITIES[entity].fields.items():
            if spec.served and spec.kind == "string" and name != "sourcedId":
                found.append(f"{entity}.{name}")
    found.append("user.userIds")
    return tuple(found)


MASKABLE: Mapping[str, str] = MappingProxyType(_maskable())
"""``entity.field`` -> the mask kind that applies to it."""
PSEUDONYMIZABLE: tuple[str, ...] = _pseudonymizable()
"""The ``entity.field`` names that may be pseudonymized: sourcedIds, string fields, userIds."""


class PolicyError(UsageError):
    """A policy document is not valid; the message lists every problem and where it is."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid sharing policy:\n" + "\n".join(f"  - {p}" for p in self.problems))


@dataclasses.dataclass(frozen=True, slots=True)
class ClassRule:
    """A class matches when every condition given holds (None: no condition)."""

    subject: str | None = None
    course_code: str | None = None
    title_contains: str | None = None


@dataclasses.dataclass(frozen=True)
class Policy:
    """A parsed, valid policy. ``None`` in ``schools``/``grades``/``classes`` means all."""

    schools: frozenset[str] | None
    grades: frozenset[str] | None
    classes: frozenset[str] | None
    class_rules: tuple[ClassRule, ...]
    fields: Mapping[str, frozenset[str]]
    masks: Mapping[str, Mapping[str, str]]
    pseudonymized: Mapping[str, frozenset[str]]
    scopes: tuple[str, ...] | None
    contract_start: dt.date | None
    contract_end: dt.date | None
    document: dict[str, Any]
    all_users: bool = False
    # Which first and last names LTI claims and NRPS carry: "preferred" (the SIS's preferred
    # name where it has one and the policy shares it) or "legal".
    names: str = "preferred"
    # Whether the app's brokered launches name the LMS that launched them (its issuer), in the
    # custom claim ``gateway_lms_platform``; off: the app never learns which LMS it came from.
    share_launch_platform: bool = False

    @property
    def school_mode(self) -> bool:
        """Whether the scope is schools (and grades) only: no class list and no class rules.

        Only then do students of an in-scope school and grade count even without an enrollment.
        """
        return self.classes is None and not self.class_rules

    @property
    def whole_district(self) -> bool:
        """Whether every user and every record of the district is in scope (all schools and
        grades, no class restriction, ``allUsers``): the scope then hides nothing."""
        return (self.all_users and self.school_mode and self.schools is None
                and self.grades is None)

    @property
    def shares_agents(self) -> bool:
        """Whether users' agents (parents, guardians, relatives) are shared."""
        return "agents" in self.fields["user"]

    def shares_entity(self, entity: str) -> bool:
        """Whether any record of ``entity`` may leave: some field beyond the base ones is granted
        (a demographics record with only its sourcedId would say nothing but "exists")."""
        return bool(self.fields.get(entity, frozenset()) - BASE_FIELDS)

    def id_pseudonymized(self, entity: str) -> bool:
        """Whether the sourcedIds of ``entity`` (and references to it) are pseudonymized."""
        owner = "user" if entity == "demographics" else entity
        return "sourcedId" in self.pseudonymized.get(owner, ())

    def treatment(self, entity: str, field: str) -> str:
        """How ``field`` of ``entity`` leaves: ``shared``, ``masked:<kind>``, ``pseudonymized`` or
        ``withheld``."""
        if field not in self.fields.get(entity, ()):
            return "withheld"
        if entity == "demographics" and not self.shares_entity(entity):
            # Demographics with no field granted are not shared at all (scope hides them).
            return "withheld"
        if entity == "demographics" and field == "sourcedId" and self.id_pseudonymized("user"):
            return "pseudonymized"
        if field in self.pseudonymized.get(entity, ()):
            return "pseudonymized"
        mask = self.masks.get(entity, {}).get(field)
        return f"masked:{mask}" if mask else "shared"

    def in_contract(self, today: dt.date) -> bool:
        """Whether ``today`` lies in the contract window (both ends included)."""
        return self.contract_refusal(today) is None

    def contract_refusal(self, today: dt.date) -> str | None:
        """Why the policy is not in force on ``today`` (outside its contract window), else None."""
        from gateway.sharing.contract import contract_refusal
        return contract_refusal(self.contract_start, self.contract_end, today)


# ----------------------------------------------------------------------------------- the schema

def _string_list(description: str, items: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "array", "description": description, "uniqueItems": True,
            "items": items or {"type": "string", "minLength": 1}}


def policy_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of policy documents, generated from the entities' field maps."""
    scope_list = {"type": "array", "minItems": 1, "uniqueItems": True,
                  "items": {"type": "string", "minLength": 1}}
    field_grants = {
        entity: _string_list(
            f"The {entity} fields that may leave: names, or \"*\" for every field but "
            + ", ".join(sorted(SENSITIVE_FIELDS[entity])) + " (which must be named).",
            {"enum": [ALL, *SERVED_FIELDS[entity]]})
        for entity in ENTITY_NAMES}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "k12-gateway sharing policy",
        "description": "What one app may receive of one district's roster: which schools, grades "
                       "and classes (rows), which fields of each entity and how (shared, masked, "
                       "pseudonymized; anything else is withheld), with which scopes and when.",
        "type": "object",
        "additionalProperties": False,
        "required": ["schools"],
        "properties": {
            "description": {"type": "string", "description": "A note for the district's records."},
            "schools": dict(scope_list, description=(
                "The schools in scope: [\"*\"] for all, or org sourcedIds.")),
            "grades": dict(scope_list, description=(
                "The grades in scope: [\"*\"] (the default) or grade codes, e.g. \"03\", \"KG\".")),
            "classes": dict(scope_list, description=(
                "The classes in scope: [\"*\"] (the default) or class sourcedIds.")),
            "allUsers": {
                "type": "boolean", "default": False,
                "description": "Also share the users who are neither students nor teachers of "
                               "in-scope classes (administrators, aides, other staff...): every "
                               "user holding a non-student role at an in-scope school, and with "
                               "all schools and grades in scope, every user of the district. "
                               "Their demographics follow, if demographics are shared."},
            "names": {
                "enum": ["preferred", "legal"], "default": "preferred",
                "description": "Which names LTI launches (given_name, family_name, name) and "
                               "NRPS carry: the person's preferred first and last names where "
                               "the SIS has them and the policy shares preferredFirstName / "
                               "preferredLastName (the default), or always the legal ones."},
            "shareLaunchPlatform": {
                "type": "boolean", "default": False,
                "description": "Whether a launch an LMS brokered through the gateway tells the "
                               "app which LMS it came from (the LMS's issuer, in the custom "
                               "parameter gateway_lms_platform). Off by default: the app never "
                               "learns it."},
            "classRules": {
                "type": "array", "description": "If present, only classes matching one of these "
                                                "rules are in scope (all conditions of a rule must hold).",
                "items": {
                    "type": "object", "additionalProperties": False, "minProperties": 1,
                    "properties": {
                        "subject": {"type": "string", "minLength": 1, "description":
                                    "A subject of the class or of its course (exact)."},
                        "courseCode": {"type": "string", "minLength": 1, "description":
                                       "The code of the class's course (exact)."},
                        "titleContains": {"type": "string", "minLength": 1, "description":
                                          "Part of the class title (case-insensitive)."},
                    },
                },
            },
            "fields": {
                "type": "object", "additionalProperties": False,
                "description": "Granted fields per entity. An entity left out gets [\"*\"], "
                               "except demographics, which gets nothing.",
                "properties": field_grants,
            },
            "mask": {
                "type": "object", "additionalProperties": False,
                "description": "Fields sent masked: \"initial\" keeps a string's first character, "
                               "\"year\" a date's year (as YYYY-01-01).",
                "properties": {name: {"enum": [mask]} for name, mask in MASKABLE.items()},
            },
            "pseudonymize": _string_list(
                "Fields sent as stable per-app opaque values; <entity>.sourcedId covers the "
                "entity's ids everywhere, references included.",
                {"enum": list(PSEUDONYMIZABLE)}),
            "scopes": _string_list("The OAuth scopes granted to the app for this district.",
                                   {"enum": list(ROSTERING_SCOPES)}),
            "contract": {
                "type": "object", "additionalProperties": False, "required": ["start", "end"],
                "description": "The contract window, both days included (UTC): outside it no "
                               "token is issued and existing tokens are refused.",
                "properties": {"start": {"type": "string", "format": "date"},
                               "end": {"type": "string", "format": "date"}},
            },
        },
    }


def render_policy_schema() -> str:
    """The schema as the committed file spells it: JSON, two-space indent, final newline."""
    return json.dumps(policy_schema(), indent=2, ensure_ascii=False) + "\n"


def write_policy_schema(path: str | os.PathLike[str]) -> Path:
    """Write the generated schema to ``path``; returns the path written."""
    target = Path(path)
    target.write_text(render_policy_schema(), encoding="utf-8")
    return target


@functools.lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(policy_schema())


# ---------------------------------------------------------------------------------- parsing

def _where(path: Any) -> str:
    parts = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return parts.lstrip(".") or "the document"


def _scope_set(values: list[str] | None) -> frozenset[str] | None:
    if values is None or ALL in values:
        return None
    return frozenset(values)


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date(text: str, where: str, problems: list[str]) -> dt.date | None:
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        problems.append(f"{where}: {text!r} is not a date (YYYY-MM-DD)")
        return None


def _granted(entity: str, names: list[str]) -> frozenset[str]:
    granted = set(BASE_FIELDS)
    for name in names:
        if name == ALL:
            granted.update(field for field in SERVED_FIELDS[entity]
                           if field not in SENSITIVE_FIELDS[entity])
        else:
            granted.add(name)
    return frozenset(granted)


def parse_policy(document: Any) -> Policy:
    """Validate a policy document and return its :class:`Policy`; :class:`PolicyError` lists
    every problem (schema violations first, then the rules the schema cannot express)."""
    problems = [f"{_where(error.absolute_path)}: {error.message}"
                for error in sorted(_validator().iter_errors(document),
                                    key=lambda e: [str(p) for p in e.absolute_path])]
    if problems:
        raise PolicyError(problems)
    field_doc = document.get("fields", {})
    fields = {entity: _granted(entity, field_doc.get(entity, list(DEFAULT_FIELDS[entity])))
              for entity in ENTITY_NAMES}
    masks: dict[str, dict[str, str]] = {entity: {} for entity in ENTITY_NAMES}
    for name, mask in document.get("mask", {}).items():
        entity, field = name.split(".", 1)
        masks[entity][field] = mask
        if field not in fields[entity]:
            problems.append(f"mask.{name}: the field is masked but not shared; add {field!r} to "
                            f"fields.{entity}")
    pseudonymized: dict[str, set[str]] = {entity: set() for entity in ENTITY_NAMES}
    for name in document.get("pseudonymize", []):
        entity, field = name.split(".", 1)
        pseudonymized[entity].add(field)
        if field not in fields[entity]:
            problems.append(f"pseudonymize: {name} is pseudonymized but not shared; add {field!r} "
                            f"to fields.{entity}")
        if field in masks[entity]:
            problems.append(f"pseudonymize: {name} is also masked; choose one")
    start = end = None
    contract = document.get("contract")
    if contract is not None:
        start = _date(contract["start"], "contract.start", problems)
        end = _date(contract["end"], "contract.end", problems)
        if start and end and end < start:
            problems.append(f"contract: ends ({end}) before it starts ({start})")
    if problems:
        raise PolicyError(problems)
    rules = tuple(ClassRule(subject=rule.get("subject"), course_code=rule.get("courseCode"),
                            title_contains=rule.get("titleContains"))
                  for rule in document.get("classRules", ()))
    return Policy(
        schools=_scope_set(document["schools"]),
        grades=_scope_set(document.get("grades")),
        classes=_scope_set(document.get("classes")),
        class_rules=rules,
        fields=MappingProxyType(fields),
        masks=MappingProxyType({k: MappingProxyType(v) for k, v in masks.items()}),
        pseudonymized=MappingProxyType({k: frozenset(v) for k, v in pseudonymized.items()}),
        scopes=tuple(document["scopes"]) if "scopes" in document else None,
        contract_start=start, contract_end=end,
        document=copy.deepcopy(document), all_users=bool(document.get("allUsers", False)),
        names=document.get("names", "preferred"),
        share_launch_platform=bool(document.get("shareLaunchPlatform", False)))


def share_everything_document() -> dict[str, Any]:
    """A policy document sharing the whole district: every school, grade, class and user, and
    every field of every entity, sensitive ones and ``metadata`` included, in clear. For apps a
    district fully trusts (its own LMS sync) and for the quickstart's demo app."""
    return {"description": "Shares the whole district, every field.",
            "schools": [ALL], "allUsers": True,
            "fields": {entity: [ALL, *sorted(SENSITIVE_FIELDS[entity])] for entity in ENTITY_NAMES}}


def load_policy_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a policy document from a JSON file (UsageError if it is not readable JSON)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read policy file {os.fspath(path)!r}: {error.strerror}") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"policy file {os.fspath(path)!r} is not JSON: {error.msg} at line "
                         f"{error.lineno}, column {error.colno}") from error


if __name__ == "__main__":  # python -m gateway.sharing.policy [PATH]
    import sys

    default = Path(__file__).resolve().parents[2] / "specs" / SCHEMA_FILE_NAME
    print(write_policy_schema(sys.argv[1] if len(sys.argv) > 1 else default))
