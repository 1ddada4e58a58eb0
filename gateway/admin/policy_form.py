"""The sharing policy as a form: which rows (schools, grades, classes, class rules) and how each
field of each entity leaves (shared, masked, pseudonymized, withheld), turned into the policy
document that ``gateway apps policy`` takes, and back. No web framework here: the form arrives as
a mapping of names to lists of values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from gateway.oneroster.vocabulary import ROSTERING_SCOPES, SCOPE_PREFIX
from gateway.sharing.policy import (ALL, BASE_FIELDS, ENTITY_NAMES, MASKABLE, PSEUDONYMIZABLE,
                                    SENSITIVE_FIELDS, SERVED_FIELDS, Policy, PolicyError,
                                    parse_policy)

SHARED, MASKED, PSEUDONYMIZED, WITHHELD = "shared", "masked", "pseudonymized", "withheld"
RULE_ROWS = 3
"""How many class-rule rows the form offers."""

ENTITY_LABELS = {"org": "Schools and other orgs", "academicSession": "Terms and school years",
                 "course": "Courses", "class": "Classes", "user": "People",
                 "enrollment": "Enrollments", "demographics": "Demographics"}
SCOPE_LABELS = {scope: scope.removeprefix(SCOPE_PREFIX) for scope in ROSTERING_SCOPES}


@dataclass(frozen=True)
class FieldRow:
    """One field of one entity, the treatments it may get, and the one it has now."""

    entity: str
    field: str
    options: tuple[str, ...]
    current: str
    sensitive: bool

    @property
    def name(self) -> str:
        """The form control's name."""
        return f"f:{self.entity}.{self.field}"


def _options(entity: str, field: str) -> tuple[str, ...]:
    if field in BASE_FIELDS:
        # Always leave: a record without them cannot be named or synchronized.
        return (SHARED, PSEUDONYMIZED) if f"{entity}.{field}" in PSEUDONYMIZABLE else (SHARED,)
    options = [SHARED]
    if f"{entity}.{field}" in MASKABLE:
        options.append(MASKED)
    if f"{entity}.{field}" in PSEUDONYMIZABLE:
        options.append(PSEUDONYMIZED)
    return (*options, WITHHELD)


def _treatment(policy: Policy, entity: str, field: str) -> str:
    if entity == "demographics" and field == "sourcedId":
        # A demographics record's id is its user's: it follows user.sourcedId, no choice here.
        return SHARED
    found = policy.treatment(entity, field)
    if found.startswith("masked"):
        return MASKED
    if found == WITHHELD and field in BASE_FIELDS and entity != "demographics":
        return SHARED
    return found


def starting_policy() -> Policy:
    """What the form shows for an app without a policy: every school, every field but the
    sensitive ones, in clear (the admin narrows it, and the preview says what that gives)."""
    return parse_policy({"schools": [ALL]})


def field_rows(policy: Policy | None) -> dict[str, list[FieldRow]]:
    """Each entity's fields with their options and current treatment under ``policy``."""
    policy = policy or starting_policy()
    return {entity: [FieldRow(entity, field, _options(entity, field),
                              _treatment(policy, entity, field),
                              field in SENSITIVE_FIELDS[entity])
                     for field in SERVED_FIELDS[entity]]
            for entity in ENTITY_NAMES}


@dataclass(frozen=True)
class RowChoices:
    """The rows part of the form as it stands: None in schools/grades/classes means all."""

    schools: frozenset[str] | None
    grades: frozenset[str] | None
    classes: frozenset[str] | None
    rules: tuple[dict[str, str], ...]
    all_users: bool
    names: str
    scopes: frozenset[str]
    contract_start: str
    contract_end: str
    description: str


def row_choices(policy: Policy | None, client_scopes: Sequence[str] = ()) -> RowChoices:
    """The rows, scopes and contract the form shows for ``policy``."""
    policy = policy or starting_policy()
    rules = tuple({"subject": r.subject or "", "courseCode": r.course_code or "",
                   "titleContains": r.title_contains or ""} for r in policy.class_rules)
    empty = {"subject": "", "courseCode": "", "titleContains": ""}
    return RowChoices(
        schools=policy.schools, grades=policy.grades, classes=policy.classes,
        rules=rules + (empty,) * max(RULE_ROWS - len(rules), 0), all_users=policy.all_users,
        names=policy.names, scopes=frozenset(policy.scopes or client_scopes or ROSTERING_SCOPES),
        contract_start=policy.contract_start.isoformat() if policy.contract_start else "",
        contract_end=policy.contract_end.isoformat() if policy.contract_end else "",
        description=str(policy.document.get("description", "")))


class FormProblem(PolicyError):
    """The form does not make a valid policy; the problems say which control to change."""


def _values(form: Mapping[str, Sequence[str]], name: str) -> list[str]:
    return [value.strip() for value in form.get(name, ()) if value.strip()]


def _one(form: Mapping[str, Sequence[str]], name: str) -> str:
    values = _values(form, name)
    return values[0] if values else ""


def _rows(form: Mapping[str, Sequence[str]], what: str, problems: list[str]) -> list[str] | None:
    if _one(form, f"{what}_mode") != "chosen":
        return None
    chosen = sorted(set(_values(form, what)))
    if not chosen:
        problems.append(f"Choose at least one of the {what}, or all of them.")
    return chosen


def document_from_form(form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The policy document the form describes; :class:`FormProblem` (or the
    :class:`PolicyError` of the document) when it makes no valid policy."""
    problems: list[str] = []
    document: dict[str, Any] = {}
    description = _one(form, "description")
    if description:
        document["description"] = description
    schools = _rows(form, "schools", problems)
    document["schools"] = schools or [ALL]
    grades = _rows(form, "grades", problems)
    if grades:
        document["grades"] = grades
    classes = _rows(form, "classes", problems)
    if classes:
        document["classes"] = classes
    rules = []
    for index in range(RULE_ROWS):
        rule = {key: _one(form, f"rule_{key}_{index}")
                for key in ("subject", "courseCode", "titleContains")}
        rule = {key: value for key, value in rule.items() if value}
        if rule:
            rules.append(rule)
    if rules:
        document["classRules"] = rules
    if _one(form, "all_users") == "on":
        document["allUsers"] = True
    if _one(form, "names") == "legal":
        document["names"] = "legal"
    fields: dict[str, list[str]] = {}
    masks: dict[str, str] = {}
    pseudonymized: list[str] = []
    for entity in ENTITY_NAMES:
        fields[entity] = []
        for field in SERVED_FIELDS[entity]:
            options = _options(entity, field)
            # A control left out: the field is withheld, or, if it always leaves, shared.
            treatment = _one(form, f"f:{entity}.{field}") or (
                WITHHELD if WITHHELD in options else SHARED)
            if treatment not in options:
                problems.append(f"{entity}.{field} cannot be {treatment}.")
                continue
            if treatment == WITHHELD:
                continue
            fields[entity].append(field)
            if treatment == MASKED:
                masks[f"{entity}.{field}"] = MASKABLE[f"{entity}.{field}"]
            elif treatment == PSEUDONYMIZED:
                pseudonymized.append(f"{entity}.{field}")
        if entity == "demographics" and not set(fields[entity]) - BASE_FIELDS:
            # Only base fields: demographics are not shared at all.
            fields[entity] = []
    document["fields"] = fields
    if masks:
        document["mask"] = masks
    if pseudonymized:
        document["pseudonymize"] = pseudonymized
    scopes = [scope for scope in ROSTERING_SCOPES if scope in _values(form, "scopes")]
    if not scopes:
        problems.append("Grant at least one scope.")
    document["scopes"] = scopes
    start, end = _one(form, "contract_start"), _one(form, "contract_end")
    if start or end:
        if not (start and end):
            problems.append("A contract needs both a start and an end date.")
        else:
            document["contract"] = {"start": start, "end": end}
    if problems:
        raise FormProblem(problems)
    parse_policy(document)
    return document
