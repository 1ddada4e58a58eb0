"""OneRoster 1.2 enumerated vocabularies and scope URIs (1.2 Rostering Information Model §5)."""
from __future__ import annotations

import re

STATUSES = frozenset({"active", "tobedeleted"})
ORG_TYPES = frozenset({"department", "district", "local", "national", "school", "state"})
SESSION_TYPES = frozenset({"gradingPeriod", "semester", "schoolYear", "term"})
CLASS_TYPES = frozenset({"homeroom", "scheduled"})
ROLE_TYPES = frozenset({"primary", "secondary"})
ROLES = frozenset({"aide", "counselor", "districtAdministrator", "guardian", "parent", "principal",
                   "proctor", "relative", "siteAdministrator", "student", "systemAdministrator",
                   "teacher"})
ENROLLMENT_ROLES = frozenset({"administrator", "proctor", "student", "teacher"})
SEXES = frozenset({"male", "female", "unspecified", "other"})
# 1.2 Resources, ResourceDType: who a resource is for, and how much it matters.
RESOURCE_ROLES = frozenset({"administrator", "aide", "guardian", "parent", "proctor", "relative",
                            "student", "teacher"})
RESOURCE_IMPORTANCES = frozenset({"primary", "secondary"})

# Every extensible enumeration also accepts "ext:" values (1.2 Rostering §5, "ext:" pattern).
EXTENSION_VALUE = re.compile(r"ext:[a-zA-Z0-9.\-_]+")


def is_enum_value(value: str, allowed: frozenset[str], extensible: bool = True) -> bool:
    """Whether ``value`` belongs to ``allowed`` (or is a legal ``ext:`` extension value)."""
    return value in allowed or (extensible and EXTENSION_VALUE.fullmatch(value) is not None)


SCOPE_PREFIX = "https://purl.imsglobal.org/spec/or/v1p2/scope/"
SCOPE_ROSTER_CORE = SCOPE_PREFIX + "roster-core.readonly"
SCOPE_ROSTER = SCOPE_PREFIX + "roster.readonly"
SCOPE_ROSTER_DEMOGRAPHICS = SCOPE_PREFIX + "roster-demographics.readonly"
ROSTERING_SCOPES = (SCOPE_ROSTER_CORE, SCOPE_ROSTER, SCOPE_ROSTER_DEMOGRAPHICS)
SCOPE_RESOURCE = SCOPE_PREFIX + "resource.readonly"
SCOPE_RESOURCE_CORE = SCOPE_PREFIX + "resource-core.readonly"
RESOURCES_SCOPES = (SCOPE_RESOURCE, SCOPE_RESOURCE_CORE)

# The gradebook service's scopes (1.2 Gradebook REST binding, "OAuth2CC" security scheme).
SCOPE_GRADEBOOK = SCOPE_PREFIX + "gradebook.readonly"
SCOPE_GRADEBOOK_CORE = SCOPE_PREFIX + "gradebook-core.readonly"
SCOPE_GRADEBOOK_CREATEPUT = SCOPE_PREFIX + "gradebook.createput"
SCOPE_GRADEBOOK_CREATEPOST = SCOPE_PREFIX + "gradebook.createpost"
SCOPE_GRADEBOOK_DELETE = SCOPE_PREFIX + "gradebook.delete"
SCOPE_ASSESSMENT = SCOPE_PREFIX + "assessment.readonly"
SCOPE_ASSESSMENT_CREATEPUT = SCOPE_PREFIX + "assessment.createput"
SCOPE_ASSESSMENT_DELETE = SCOPE_PREFIX + "assessment.delete"
GRADEBOOK_SCOPES = (SCOPE_GRADEBOOK, SCOPE_GRADEBOOK_CORE, SCOPE_GRADEBOOK_CREATEPUT,
                    SCOPE_GRADEBOOK_CREATEPOST, SCOPE_GRADEBOOK_DELETE, SCOPE_ASSESSMENT,
                    SCOPE_ASSESSMENT_CREATEPUT, SCOPE_ASSESSMENT_DELETE)

# A result's scoreStatus (1.2 Gradebook §5, ScoreStatusEnum; extensible).
SCORE_STATUSES = frozenset({"exempt", "fully graded", "not submitted", "partially graded",
                            "submitted"})
