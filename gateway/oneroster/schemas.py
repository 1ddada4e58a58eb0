"""The one definition of each OneRoster 1.2 rostering entity's fields (1.2 Rostering REST binding).

One marshmallow schema per entity, with exactly the property names, types, required flags and
enumerations of the official OpenAPI document (``onerosterv1p2rostersservice_openapi3_v1p0.json``,
``components.schemas.*DType``). The schemas validate a representation (``load`` raises on bad
input) and are what :mod:`gateway.oneroster.openapi` turns into the project's published document.

Each field also says where the gateway stores it, in its ``metadata``: ``column`` (a column of the
entity's own table, by its database name) or ``related`` (rows of another table that point back at
the record). :data:`FIELD_MAPS` collects that into one per-entity field map, read by the fast
serializer (:mod:`gateway.oneroster.serialize`) and by the filter/sort compiler, so that the
name-to-column mapping is written down exactly once, here.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from gateway.oneroster.vocabulary import (CLASS_TYPES, ENROLLMENT_ROLES, EXTENSION_VALUE, ORG_TYPES,
                                          RESOURCE_IMPORTANCES, RESOURCE_ROLES, ROLE_TYPES, ROLES,
                                          SESSION_TYPES, SEXES, STATUSES, is_enum_value)

# --------------------------------------------------------------------------------------------------
# Field types that the wire format needs beyond marshmallow's own.


class StringBoolean(fields.String):
    """A boolean carried as the string ``"true"`` or ``"false"`` (1.2 REST binding: booleans are
    strings, e.g. ``enabledUser``, ``primary``, the demographics flags)."""

    VALUES: ClassVar[tuple[str, str]] = ("true", "false")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.OneOf(self.VALUES), **kwargs)

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        if isinstance(value, bool):
            return "true" if value else "false"
        return super()._serialize(value, attr, obj, **kwargs)


class ClosedEnum(fields.String):
    """A string from a fixed vocabulary that admits no extension (``status``, ``roleType``)."""

    def __init__(self, allowed: frozenset[str], **kwargs: Any) -> None:
        self.allowed = frozenset(allowed)
        super().__init__(validate=validate.OneOf(sorted(self.allowed)), **kwargs)


class ExtensibleEnum(fields.String):
    """A string from a vocabulary that also accepts ``ext:`` values (1.2 Rostering §5: every
    extensible enumeration is ``anyOf`` the listed tokens or the pattern ``(ext:)[a-zA-Z0-9.-_]+``)."""

    #: The extension pattern as this project publishes it: anchored (the official document's
    #: pattern is unanchored, which in JSON Schema would accept any string containing ``ext:x``).
    PATTERN: ClassVar[str] = r"^(ext:)[a-zA-Z0-9\.\-_]+$"

    def __init__(self, allowed: frozenset[str], **kwargs: Any) -> None:
        self.allowed = frozenset(allowed)
        super().__init__(validate=self._check, **kwargs)

    def _check(self, value: str) -> None:
        if not is_enum_value(value, self.allowed):
            raise ValidationError(
                f"Must be one of {', '.join(sorted(self.allowed))} or match {EXTENSION_VALUE.pattern}.")


def _store(column: str | None, **extra: Any) -> dict[str, Any]:
    """Field metadata naming the store column (database name) a field comes from, or None."""
    return {"column": column, **extra}


@dataclasses.dataclass(frozen=True, slots=True)
class Related:
    """Values kept in rows of another table that point back at the record.

    ``table.key`` holds the record's sourcedId; ``value`` is the column of those rows that gives the
    field's value (None: the whole row is the value, e.g. a user's roles).
    """

    table: str
    key: str
    value: str | None = None


# --------------------------------------------------------------------------------------------------
# References and shared pieces.


class GUIDRefSchema(Schema):
    """A reference to another record: ``{href, sourcedId, type}`` (the ``*GUIDRefDType`` classes).

    ``href`` is an absolute URI by the schema. Subclasses fix ``type`` to one value.
    """

    openapi_name: ClassVar[str] = "GUIDRefDType"
    ref_type: ClassVar[str] = ""

    href = fields.String(required=True, metadata={"format": "uri"},
                         validate=validate.URL(relative=False, require_tld=False))
    sourcedId = fields.String(required=True)


def _ref_type_field(value: str) -> fields.String:
    return fields.String(required=True, validate=validate.OneOf([value]))


class OrgGUIDRefSchema(GUIDRefSchema):
    """A reference to an org (``OrgGUIDRefDType``)."""

    openapi_name = "OrgGUIDRefDType"
    ref_type = "org"
    type = _ref_type_field("org")


class AcadSessionGUIDRefSchema(GUIDRefSchema):
    """A reference to an academic session (``AcadSessionGUIDRefDType``)."""

    openapi_name = "AcadSessionGUIDRefDType"
    ref_type = "academicSession"
    type = _ref_type_field("academicSession")


class CourseGUIDRefSchema(GUIDRefSchema):
    """A reference to a course (``CourseGUIDRefDType``)."""

    openapi_name = "CourseGUIDRefDType"
    ref_type = "course"
    type = _ref_type_field("course")


class ClassGUIDRefSchema(GUIDRefSchema):
    """A reference to a class (``ClassGUIDRefDType``)."""

    openapi_name = "ClassGUIDRefDType"
    ref_type = "class"
    type = _ref_type_field("class")


class UserGUIDRefSchema(GUIDRefSchema):
    """A reference to a user (``UserGUIDRefDType``)."""

    openapi_name = "UserGUIDRefDType"
    ref_type = "user"
    type = _ref_type_field("user")


class ResourceGUIDRefSchema(GUIDRefSchema):
    """A reference to a resource of the Resources service (``ResourceGUIDRefDType``)."""

    openapi_name = "ResourceGUIDRefDType"
    ref_type = "resource"
    type = _ref_type_field("resource")


GUID_REF_SCHEMAS: Mapping[str, type[GUIDRefSchema]] = MappingProxyType({
    cls.ref_type: cls for cls in (OrgGUIDRefSchema, AcadSessionGUIDRefSchema, CourseGUIDRefSchema,
                                  ClassGUIDRefSchema, UserGUIDRefSchema, ResourceGUIDRefSchema)})
"""The reference schema for each reference ``type``."""


class MetadataSchema(Schema):
    """The open ``metadata`` extension object (``MetadataDType``): any properties."""

    openapi_name: ClassVar[str] = "MetadataDType"

    class Meta:
        unknown = INCLUDE


class BaseSchema(Schema):
    """The fields every OneRoster base record carries (1.2 Rostering §4.1 "Base")."""

    openapi_name: ClassVar[str] = ""
    #: The table holding the entity (the field map's "own row").
    table: ClassVar[str] = ""

    sourcedId = fields.String(required=True, metadata=_store("sourced_id"))
    status = ClosedEnum(STATUSES, required=True, metadata=_store("status"))
    dateLastModified = fields.AwareDateTime(required=True, metadata=_store("date_last_modified"))
    metadata = fields.Nested(MetadataSchema, metadata=_store("metadata"))


# --------------------------------------------------------------------------------------------------
# The entities.


class OrgSchema(BaseSchema):
    """An org: district, school, department... (``OrgDType``; 1.2 Rostering §4.9)."""

    openapi_name = "OrgDType"
    table = "orgs"

    name = fields.String(required=True, metadata=_store("name"))
    type = ExtensibleEnum(ORG_TYPES, required=True, metadata=_store("type"))
    identifier = fields.String(required=True, metadata=_store("identifier"))
    parent = fields.Nested(OrgGUIDRefSchema, metadata=_store("parent_sourced_id"))
    children = fields.List(fields.Nested(OrgGUIDRefSchema), metadata=_store(
        None, related=Related("orgs", "parent_sourced_id", "sourced_id")))


class AcademicSessionSchema(BaseSchema):
    """A school year, semester, term or grading period (``AcademicSessionDType``; §4.2)."""

    openapi_name = "AcademicSessionDType"
    table = "academic_sessions"

    title = fields.String(required=True, metadata=_store("title"))
    startDate = fields.Date(required=True, metadata=_store("start_date"))
    endDate = fields.Date(required=True, metadata=_store("end_date"))
    type = ExtensibleEnum(SESSION_TYPES, required=True, metadata=_store("type"))
    parent = fields.Nested(AcadSessionGUIDRefSchema, metadata=_store("parent_sourced_id"))
    children = fields.List(fields.Nested(AcadSessionGUIDRefSchema), metadata=_store(
        None, related=Related("academic_sessions", "parent_sourced_id", "sourced_id")))
    schoolYear = fields.String(required=True, metadata=_store("school_year"))


class CourseSchema(BaseSchema):
    """A course (``CourseDType``; §4.5). ``org`` is optional in the REST schema but always stored."""

    openapi_name = "CourseDType"
    table = "courses"

    title = fields.String(required=True, metadata=_store("title"))
    schoolYear = fields.Nested(AcadSessionGUIDRefSchema, metadata=_store("school_year_sourced_id"))
    courseCode = fields.String(required=True, metadata=_store("course_code"))
    grades = fields.List(fields.String(), metadata=_store("grades"))
    subjects = fields.List(fields.String(), metadata=_store("subjects"))
    org = fields.Nested(OrgGUIDRefSchema, metadata=_store("org_sourced_id"))
    subjectCodes = fields.List(fields.String(), metadata=_store("subject_codes"))
    resources = fields.List(fields.Nested(ResourceGUIDRefSchema), metadata=_store(
        None, related=Related("course_resources", "course_sourced_id", "resource_sourced_id")))


class ClassSchema(BaseSchema):
    """A class (section) of a course at a school in one or more terms (``ClassDType``; §4.4)."""

    openapi_name = "ClassDType"
    table = "classes"

    title = fields.String(required=True, metadata=_store("title"))
    classCode = fields.String(metadata=_store("class_code"))
    classType = ExtensibleEnum(CLASS_TYPES, metadata=_store("class_type"))
    location = fields.String(metadata=_store("location"))
    grades = fields.List(fields.String(), metadata=_store("grades"))
    subjects = fields.List(fields.String(), metadata=_store("subjects"))
    course = fields.Nested(CourseGUIDRefSchema, required=True, metadata=_store("course_sourced_id"))
    school = fields.Nested(OrgGUIDRefSchema, required=True, metadata=_store("school_sourced_id"))
    terms = fields.List(fields.Nested(AcadSessionGUIDRefSchema), required=True,
                        validate=validate.Length(min=1), metadata=_store(
                            "term_sourced_ids",
                            related=Related("class_terms", "class_sourced_id", "term_sourced_id")))
    subjectCodes = fields.List(fields.String(), metadata=_store("subject_codes"))
    periods = fields.List(fields.String(), metadata=_store("periods"))
    resources = fields.List(fields.Nested(ResourceGUIDRefSchema), metadata=_store(
        None, related=Related("class_resources", "class_sourced_id", "resource_sourced_id")))


class UserIdSchema(Schema):
    """An external identifier of a user (``UserIdDType``): an item of ``users.user_ids``."""

    openapi_name: ClassVar[str] = "UserIdDType"
    table: ClassVar[str] = "users.user_ids"

    type = fields.String(required=True, metadata=_store("type"))
    identifier = fields.String(required=True, metadata=_store("identifier"))


class CredentialSchema(Schema):
    """A credential of a user profile (``CredentialDType``); the official schema leaves it open."""

    openapi_name: ClassVar[str] = "CredentialDType"
    table: ClassVar[str] = "user_profiles"

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True, metadata=_store("credential_type"))
    username = fields.String(required=True, metadata=_store("username"))
    password = fields.String(metadata=_store("password"))


class UserProfileSchema(Schema):
    """A user's account with a vendor's application (``UserProfileDType``; §4.13.3).

    ``profileId`` is the profile's sourcedId (userProfiles.csv ``sourcedId``): the official schema
    types it ``format: uri`` (the model's AnyURI), which a sourcedId satisfies only as a URI
    reference. Each stored profile row carries exactly one credential.
    """

    openapi_name: ClassVar[str] = "UserProfileDType"
    table: ClassVar[str] = "user_profiles"

    profileId = fields.String(required=True, metadata=_store("sourced_id", format="uri"))
    profileType = fields.String(required=True, metadata=_store("profile_type"))
    vendorId = fields.String(required=True, metadata=_store("vendor_id"))
    applicationId = fields.String(metadata=_store("application_id"))
    description = fields.String(metadata=_store("description"))
    # The store keeps one credential per profile, on the profile's own row: the "related" rows are
    # the user_profiles rows with the profile's sourcedId, i.e. the profile row itself.
    credentials = fields.List(fields.Nested(CredentialSchema), metadata=_store(
        None, related=Related("user_profiles", "sourced_id")))


class RoleSchema(Schema):
    """A user's role in an org (``RoleDType``; §4.13.1): a row of the roles table.

    ``userProfile`` carries the sourcedId of one of the user's profiles (roles.csv
    ``userProfileSourcedId``), typed ``format: uri`` like ``profileId``.
    """

    openapi_name: ClassVar[str] = "RoleDType"
    table: ClassVar[str] = "roles"

    roleType = ClosedEnum(ROLE_TYPES, required=True, metadata=_store("role_type"))
    role = ExtensibleEnum(ROLES, required=True, metadata=_store("role"))
    org = fields.Nested(OrgGUIDRefSchema, required=True, metadata=_store("org_sourced_id"))
    userProfile = fields.String(metadata=_store("user_profile_sourced_id", format="uri"))
    beginDate = fields.Date(metadata=_store("begin_date"))
    endDate = fields.Date(metadata=_store("end_date"))


class UserSchema(BaseSchema):
    """A person (``UserDType``; §4.13). ``password`` is never served: the store keeps only a
    password hash. ``resources`` (like a class's and a course's) are the person's active links of
    userResources.csv, references into the Resources service."""

    openapi_name = "UserDType"
    table = "users"

    userMasterIdentifier = fields.String(metadata=_store("user_master_identifier"))
    username = fields.String(metadata=_store("username"))
    userIds = fields.List(fields.Nested(UserIdSchema), metadata=_store("user_ids"))
    enabledUser = StringBoolean(required=True, metadata=_store("enabled_user"))
    givenName = fields.String(required=True, metadata=_store("given_name"))
    familyName = fields.String(required=True, metadata=_store("family_name"))
    middleName = fields.String(metadata=_store("middle_name"))
    preferredFirstName = fields.String(metadata=_store("preferred_given_name"))
    preferredMiddleName = fields.String(metadata=_store("preferred_middle_name"))
    preferredLastName = fields.String(metadata=_store("preferred_family_name"))
    pronouns = fields.String(metadata=_store("pronouns"))
    roles = fields.List(fields.Nested(RoleSchema), required=True, validate=validate.Length(min=1),
                        metadata=_store(None, related=Related("roles", "user_sourced_id")))
    userProfiles = fields.List(fields.Nested(UserProfileSchema), metadata=_store(
        None, related=Related("user_profiles", "user_sourced_id")))
    primaryOrg = fields.Nested(OrgGUIDRefSchema, metadata=_store("primary_org_sourced_id"))
    identifier = fields.String(metadata=_store("identifier"))
    email = fields.String(metadata=_store("email"))
    sms = fields.String(metadata=_store("sms"))
    phone = fields.String(metadata=_store("phone"))
    agents = fields.List(fields.Nested(UserGUIDRefSchema), metadata=_store(
        "agent_sourced_ids", related=Related("user_agents", "user_sourced_id", "agent_sourced_id")))
    grades = fields.List(fields.String(), metadata=_store("grades"))
    password = fields.String(metadata=_store(None))
    resources = fields.List(fields.Nested(ResourceGUIDRefSchema), metadata=_store(
        None, related=Related("user_resources", "user_sourced_id", "resource_sourced_id")))


class EnrollmentSchema(BaseSchema):
    """A user's membership of a class in a role (``EnrollmentDType``; §4.8)."""

    openapi_name = "EnrollmentDType"
    table = "enrollments"

    user = fields.Nested(UserGUIDRefSchema, required=True, metadata=_store("user_sourced_id"))
    class_ = fields.Nested(ClassGUIDRefSchema, required=True, data_key="class",
                           metadata=_store("class_sourced_id"))
    school = fields.Nested(OrgGUIDRefSchema, required=True, metadata=_store("school_sourced_id"))
    role = ExtensibleEnum(ENROLLMENT_ROLES, required=True, metadata=_store("role"))
    primary = StringBoolean(metadata=_store("primary"))
    beginDate = fields.Date(metadata=_store("begin_date"))
    endDate = fields.Date(metadata=_store("end_date"))


class DemographicsSchema(BaseSchema):
    """A user's demographic data; its sourcedId is the user's (``DemographicsDType``; §4.6)."""

    openapi_name = "DemographicsDType"
    table = "demographics"

    birthDate = fields.Date(metadata=_store("birth_date"))
    sex = ExtensibleEnum(SEXES, metadata=_store("sex"))
    americanIndianOrAlaskaNative = StringBoolean(metadata=_store("american_indian_or_alaska_native"))
    asian = StringBoolean(metadata=_store("asian"))
    blackOrAfricanAmerican = StringBoolean(metadata=_store("black_or_african_american"))
    nativeHawaiianOrOtherPacificIslander = StringBoolean(
        metadata=_store("native_hawaiian_or_other_pacific_islander"))
    white = StringBoolean(metadata=_store("white"))
    demographicRaceTwoOrMoreRaces = StringBoolean(metadata=_store("demographic_race_two_or_more_races"))
    hispanicOrLatinoEthnicity = StringBoolean(metadata=_store("hispanic_or_latino_ethnicity"))
    countryOfBirthCode = fields.String(metadata=_store("country_of_birth_code"))
    stateOfBirthAbbreviation = fields.String(metadata=_store("state_of_birth_abbreviation"))
    cityOfBirth = fields.String(metadata=_store("city_of_birth"))
    publicSchoolResidenceStatus = fields.String(metadata=_store("public_school_residence_status"))


class ResourceSchema(BaseSchema):
    """Learning content used by a class, a course or a person (``ResourceDType`` of the 1.2
    Resources service, ``onerosterv1p2resourcesservice_openapi3_v1p0.json``)."""

    openapi_name = "ResourceDType"
    table = "resources"

    title = fields.String(metadata=_store("title"))
    roles = fields.List(ExtensibleEnum(RESOURCE_ROLES), metadata=_store("roles"))
    importance = ClosedEnum(RESOURCE_IMPORTANCES, metadata=_store("importance"))
    vendorResourceId = fields.String(required=True, metadata=_store("vendor_resource_id"))
    vendorId = fields.String(metadata=_store("vendor_id"))
    applicationId = fields.String(metadata=_store("application_id"))


# --------------------------------------------------------------------------------------------------
# The error body (1.2 REST binding §3.3: imsx_StatusInfo fields at the top level).

CODE_MAJORS = ("success", "processing", "failure", "unsupported")
SEVERITIES = ("status", "warning", "error")
CODE_MINORS = ("fullsuccess", "invalid_filter_field", "invalid_selection_field", "invaliddata",
               "unauthorisedrequest", "forbidden", "server_busy", "unknownobject",
               "internal_server_error")


class CodeMinorFieldSchema(Schema):
    """One code minor status code (``imsx_CodeMinorFieldDType``)."""

    openapi_name: ClassVar[str] = "imsx_CodeMinorFieldDType"

    imsx_codeMinorFieldName = fields.String(required=True, metadata={"default": "TargetEndSystem"})
    imsx_codeMinorFieldValue = fields.String(required=True, validate=validate.OneOf(CODE_MINORS))


class CodeMinorSchema(Schema):
    """The set of code minor status codes (``imsx_CodeMinorDType``)."""

    openapi_name: ClassVar[str] = "imsx_CodeMinorDType"

    imsx_codeMinorField = fields.List(fields.Nested(CodeMinorFieldSchema), required=True,
                                      validate=validate.Length(min=1))


class StatusInfoSchema(Schema):
    """The body of every error response (``imsx_StatusInfoDType``), never wrapped."""

    openapi_name: ClassVar[str] = "imsx_StatusInfoDType"

    imsx_codeMajor = fields.String(required=True, validate=validate.OneOf(CODE_MAJORS))
    imsx_severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    imsx_description = fields.String()
    imsx_CodeMinor = fields.Nested(CodeMinorSchema)


# --------------------------------------------------------------------------------------------------
# The per-entity field map: the one place REST names meet store columns.

KINDS = ("string", "enum", "boolean", "date", "datetime", "strings", "ref", "refs", "objects",
         "metadata")
"""The kinds of REST field. ``string``/``enum``/``boolean``/``date``/``datetime`` are scalars;
``strings`` is a list of strings; ``ref``/``refs`` one or a list of ``{href, sourcedId, type}``;
``objects`` a list of nested objects (roles, userProfiles, userIds, credentials); ``metadata`` the
open extension object."""

SCALAR_KINDS = frozenset({"string", "enum", "boolean", "date", "datetime"})


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """How one REST field of an entity is stored, and what a query may do with it.

    - ``name``: the REST property name (``preferredFirstName``).
    - ``kind``: one of :data:`KINDS`.
    - ``required``: required by the REST schema (a required field is always emitted).
    - ``scalar``: one primitive value, so the field can be sorted on and filtered with ``=``, ``<``...
    - ``column``: the column of the entity's own table (database name; ``metadata`` for the
      extension object) holding the value, or for ``ref``/``refs`` the referenced sourcedId(s);
      None when the value is not on the row.
    - ``related``: rows of another table that point back at the record (a user's roles, an org's
      children) or the link table indexing a list of references (a class's terms).
    - ``ref_type``: the ``type`` of the references of a ``ref``/``refs`` field.
    - ``item``: for ``objects``, the name of the nested object's own field map (``role``...).
    - ``enum``: the vocabulary of an ``enum`` field; ``extensible`` says ``ext:`` values are allowed.
    - ``served``: False for fields the gateway never emits (``user.password``).
    """

    name: str
    kind: str
    required: bool
    scalar: bool
    column: str | None
    related: Related | None = None
    ref_type: str | None = None
    item: str | None = None
    enum: frozenset[str] | None = None
    extensible: bool = False
    served: bool = True


def _field_kind(field: fields.Field) -> tuple[str, dict[str, Any]]:
    """The :data:`KINDS` value of a marshmallow field, with the extra FieldSpec attributes."""
    if isinstance(field, StringBoolean):
        return "boolean", {}
    if isinstance(field, ExtensibleEnum):
        return "enum", {"enum": field.allowed, "extensible": True}
    if isinstance(field, ClosedEnum):
        return "enum", {"enum": field.allowed}
    if isinstance(field, fields.DateTime):
        return "datetime", {}
    if isinstance(field, fields.Date):
        return "date", {}
    if isinstance(field, fields.String):
        return "string", {}
    if isinstance(field, fields.Nested):
        schema = field.nested
        if isinstance(schema, type) and issubclass(schema, GUIDRefSchema):
            return "ref", {"ref_type": schema.ref_type}
        if schema is MetadataSchema:
            return "metadata", {}
    if isinstance(field, fields.List):
        inner = field.inner
        if isinstance(inner, fields.String):
            return "strings", {}
        if isinstance(inner, fields.Nested) and isinstance(inner.nested, type):
            if issubclass(inner.nested, GUIDRefSchema):
                return "refs", {"ref_type": inner.nested.ref_type}
            return "objects", {"item": _ITEM_NAMES[inner.nested]}
    raise TypeError(f"no field-map kind for {field!r}")


def build_field_map(schema: type[Schema]) -> Mapping[str, FieldSpec]:
    """The field map of ``schema``: REST name -> :class:`FieldSpec`, in the schema's field order."""
    specs: dict[str, FieldSpec] = {}
    for attr, field in schema._declared_fields.items():
        name = field.data_key or attr
        if "column" not in field.metadata:
            raise TypeError(f"{schema.__name__}.{name} does not say which store column it maps to")
        kind, extra = _field_kind(field)
        column = field.metadata["column"]
        related = field.metadata.get("related")
        served = column is not None or related is not None
        specs[name] = FieldSpec(name=name, kind=kind, required=field.required,
                                scalar=kind in SCALAR_KINDS and served, column=column,
                                related=related, served=served, **extra)
    return MappingProxyType(specs)


OBJECT_SCHEMAS: Mapping[str, type[Schema]] = MappingProxyType({
    "role": RoleSchema, "userProfile": UserProfileSchema, "credential": CredentialSchema,
    "userId": UserIdSchema})
"""The nested objects of a user, by the name of their field map (each has a ``table``)."""

_ITEM_NAMES: dict[type[Schema], str] = {schema: name for name, schema in OBJECT_SCHEMAS.items()}


@dataclasses.dataclass(frozen=True, slots=True)
class Entity:
    """A OneRoster rostering entity: its schema, table, wrapper keys and field map.

    ``path`` is the generic collection under the service base that ``href`` references point into
    (``/orgs/{id}`` for every org, schools included).
    """

    name: str
    schema: type[BaseSchema]
    table: str
    single_key: str
    collection_key: str
    path: str
    fields: Mapping[str, FieldSpec]

    @property
    def field_names(self) -> tuple[str, ...]:
        """The REST field names, in schema order (what ``fields=`` may select)."""
        return tuple(self.fields)

    @property
    def scalar_fields(self) -> tuple[str, ...]:
        """The fields a query may sort and filter on."""
        return tuple(name for name, spec in self.fields.items() if spec.scalar)


def _entity(name: str, schema: type[BaseSchema], collection_key: str, path: str) -> Entity:
    return Entity(name=name, schema=schema, table=schema.table, single_key=name,
                  collection_key=collection_key, path=path, fields=build_field_map(schema))


ENTITIES: Mapping[str, Entity] = MappingProxyType({e.name: e for e in (
    _entity("org", OrgSchema, "orgs", "orgs"),
    _entity("academicSession", AcademicSessionSchema, "academicSessions", "academicSessions"),
    _entity("course", CourseSchema, "courses", "courses"),
    _entity("class", ClassSchema, "classes", "classes"),
    _entity("user", UserSchema, "users", "users"),
    _entity("enrollment", EnrollmentSchema, "enrollments", "enrollments"),
    # The single record keeps the plural key: {"demographics": {...}} (SingleDemographicsDType).
    _entity("demographics", DemographicsSchema, "demographics", "demographics"),
)})
"""The seven rostering entities, by name (the name is also the single-record wrapper key)."""

RESOURCE_ENTITIES: Mapping[str, Entity] = MappingProxyType({e.name: e for e in (
    _entity("resource", ResourceSchema, "resources", "resources"),
)})
"""The Resources service's entity (its own service, so not among the rostering :data:`ENTITIES`
that sharing policies, the rostering document and CSV exports enumerate)."""

ALL_ENTITIES: Mapping[str, Entity] = MappingProxyType({**ENTITIES, **RESOURCE_ENTITIES})
"""Every entity the read path serves, by name: what it looks an endpoint's entity up in."""

FIELD_MAPS: Mapping[str, Mapping[str, FieldSpec]] = MappingProxyType({
    **{name: entity.fields for name, entity in ENTITIES.items()},
    **{name: build_field_map(schema) for name, schema in OBJECT_SCHEMAS.items()},
})
"""Every field map: the seven entities plus the nested ``role``, ``userProfile``, ``credential``
and ``userId`` objects (whose columns are those of roles, user_profiles and the user_ids items)."""

REF_PATHS: Mapping[str, str] = MappingProxyType({
    name: entity.path for name, entity in ENTITIES.items() if name in GUID_REF_SCHEMAS})
"""The collection under the rostering base that a reference of each ``type`` points into."""

RESOURCES_FROM_ROSTERING: Mapping[str, str] = MappingProxyType({
    "resource": "../../resources/v1p2/resources"})
"""Where a rostering record's references into another service point, relative to the rostering
base (``/ims/oneroster/rostering/v1p2``): a user's, class's or course's ``resources`` name records
of the Resources service (``/ims/oneroster/resources/v1p2/resources/{id}``; Rostering
``ResourceGUIDRefDType``). Relative, so that a rendering holds no public base URL; each path
climbs out of the rostering base with one leading ``../../``, which
:func:`gateway.oneroster.serialize.service_prefix` resolves."""

ERROR_SCHEMAS: tuple[type[Schema], ...] = (StatusInfoSchema, CodeMinorSchema, CodeMinorFieldSchema)
"""The schemas of the error body."""
