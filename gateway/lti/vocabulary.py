"""Names the LTI 1.3 and LTI Advantage specifications fix: claims, message types, scopes, media
types, and the LIS role URIs the OneRoster roles map to."""
from __future__ import annotations

from typing import Iterable

LTI_VERSION = "1.3.0"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"

# LTI 1.3 Core §5.3 (required message claims) and §5.4 (optional ones).
MESSAGE_TYPE = CLAIM + "message_type"
VERSION = CLAIM + "version"
DEPLOYMENT_ID = CLAIM + "deployment_id"
TARGET_LINK_URI = CLAIM + "target_link_uri"
RESOURCE_LINK = CLAIM + "resource_link"
ROLES = CLAIM + "roles"
CONTEXT = CLAIM + "context"
TOOL_PLATFORM = CLAIM + "tool_platform"
LAUNCH_PRESENTATION = CLAIM + "launch_presentation"
LIS = CLAIM + "lis"
CUSTOM = CLAIM + "custom"

# LTI Advantage service claims.
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"  # NRPS 2.0 §3.6.1
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"  # AGS 2.0 §3.1
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"  # DL 2.0 §4.4.1
DL_CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"  # DL 2.0 §4.5.2
DL_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
DL_MSG = "https://purl.imsglobal.org/spec/lti-dl/claim/msg"
DL_ERRORMSG = "https://purl.imsglobal.org/spec/lti-dl/claim/errormsg"

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"

COURSE_SECTION = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseSection"

# Scopes of the services (Security Framework §4.1; AGS 2.0 §3.1, NRPS 2.0 §3.6.1).
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS_SCOPES = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE)
SERVICE_SCOPES = AGS_SCOPES + (SCOPE_NRPS,)

# Media types (NRPS 2.0 §2.2, AGS 2.0 §3.2-3.4).
NRPS_MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
AGS_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
AGS_LINEITEMS = "application/vnd.ims.lis.v2.lineitemcontainer+json"
AGS_SCORE = "application/vnd.ims.lis.v1.score+json"
AGS_RESULTS = "application/vnd.ims.lis.v2.resultcontainer+json"

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2

# The only signature algorithm accepted or used (Security Framework §6.1: RS256 is the one all
# parties must support; accepting others only widens the attack surface).
ALGORITHM = "RS256"

# LIS roles (LTI 1.3 Core Appendix A.2).
_MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
_INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
_SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"

LEARNER = _MEMBERSHIP + "Learner"
INSTRUCTOR = _MEMBERSHIP + "Instructor"
CONTEXT_ADMINISTRATOR = _MEMBERSHIP + "Administrator"
TEACHING_ASSISTANT = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"

# OneRoster 1.2 enrollment roles -> context (membership) roles, Core §A.2.3. A proctor supervises
# a class without owning it: a teaching assistant, without the principal Instructor role.
CONTEXT_ROLES: dict[str, tuple[str, ...]] = {
    "student": (LEARNER,),
    "teacher": (INSTRUCTOR,),
    "administrator": (CONTEXT_ADMINISTRATOR,),
    "proctor": (TEACHING_ASSISTANT,),
}

# OneRoster 1.2 user roles (roles.csv) -> institution roles, Core §A.2.2 (and the system role
# of a system administrator, §A.2.1). Parents, guardians and relatives are mentors.
INSTITUTION_ROLES: dict[str, tuple[str, ...]] = {
    "student": (_INSTITUTION + "Student",),
    "teacher": (_INSTITUTION + "Instructor", _INSTITUTION + "Faculty"),
    "aide": (_INSTITUTION + "Staff",),
    "counselor": (_INSTITUTION + "Staff",),
    "proctor": (_INSTITUTION + "Staff",),
    "principal": (_INSTITUTION + "Administrator",),
    "siteAdministrator": (_INSTITUTION + "Administrator",),
    "districtAdministrator": (_INSTITUTION + "Administrator",),
    "systemAdministrator": (_INSTITUTION + "Administrator", _SYSTEM + "SysAdmin"),
    "parent": (_INSTITUTION + "Mentor",),
    "guardian": (_INSTITUTION + "Mentor",),
    "relative": (_INSTITUTION + "Mentor",),
}

# Enrollment roles whose holders are the class's learners: the only people a score is for.
LEARNER_ENROLLMENT_ROLES = frozenset(role for role, uris in CONTEXT_ROLES.items() if LEARNER in uris)

# OneRoster 1.2 user roles (roles.csv) of staff: who sees what is placed "for staff".
STAFF_ROLES = frozenset({"teacher", "aide", "counselor", "proctor", "principal", "siteAdministrator",
                         "districtAdministrator", "systemAdministrator", "administrator"})

# Enrollment roles that may add content to a class through deep linking.
INSTRUCTOR_ENROLLMENT_ROLES = frozenset({"teacher", "administrator"})


def lis_roles(enrollment_roles: Iterable[str], user_roles: Iterable[str]) -> list[str]:
    """The LIS role URIs of a user: context roles from their enrollments in the class, then
    institution roles from their OneRoster roles; unknown (``ext:``) roles map to nothing."""
    out: list[str] = []
    for role in enrollment_roles:
        out.extend(CONTEXT_ROLES.get(role, ()))
    for role in user_roles:
        out.extend(INSTITUTION_ROLES.get(role, ()))
    return list(dict.fromkeys(out))


def enrollment_roles_for(role_filter: str) -> frozenset[str] | None:
    """The OneRoster enrollment roles an NRPS ``role`` parameter names (NRPS 2.0 §2.4.1: a full
    context role URI, or its simple name such as ``Learner``); None if it names no known role."""
    wanted = role_filter.strip()
    if not wanted:
        return None
    found = set()
    for oneroster, uris in CONTEXT_ROLES.items():
        for uri in uris:
            simple = uri.rsplit("#", 1)[1]
            if wanted in (uri, simple):
                found.add(oneroster)
    return frozenset(found) or None
