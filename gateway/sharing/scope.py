"""A policy's row scope as SQL predicates over the store tables (SQLAlchemy Core, no ids in Python).

The rules, for one app in one district (each is a predicate on the entity's table, built from
correlated ``EXISTS`` and uncorrelated ``IN`` subqueries that follow the store's indexes):

- **Classes** in scope: in a listed school (or any), listed (or any), with a grade in the policy's
  grades (the class's grades, or its course's when the class lists none) and, if the policy has
  class rules, matching one of them (a subject of the class or its course; the course's code; a
  case-insensitive part of the title).
- **Users** visible: those with an active enrollment, in any role, in an in-scope class (the
  students of the class and the teachers who teach it); in *school mode* (no class list and no
  class rules) also the students holding an active ``student`` role at an in-scope school (any org
  if all schools) whose grades meet the policy's grades. Agents (parents, guardians, relatives)
  are visible only if the policy shares ``user.agents``, and then only the agents of visible
  students. Everyone else (administrators, aides and counselors without an in-scope enrollment,
  other parents) is never visible.
- **Enrollments**: in an in-scope class, of a visible user.
- **Courses**: those of an in-scope class; in school mode also the courses of an in-scope school
  (any org if all schools) whose grades meet the policy's grades.
- **Orgs**: in school mode with all schools, every org of the district; otherwise the listed
  schools (school mode) or the schools of in-scope classes, and the parents of those (the district).
- **Academic sessions**: in school mode with all schools, every session (the district calendar);
  otherwise the terms of in-scope classes, their parents (school years) and their children
  (grading periods).
- **Demographics**: those of visible *students* (a student is a user with an active student
  enrollment in an in-scope class, or in school mode a student by role as above), and only if the
  policy grants at least one demographics field.

With a ``members`` snapshot (:mod:`gateway.sharing.snapshots`, built from these very predicates
when the policy or the district's data changes), classes, users and students are in scope when the
snapshot lists them: one index probe each, instead of the rules above on every statement. Courses,
orgs and sessions keep their rules, over the snapshot's classes.

"Active" means ``status = 'active'`` (an enrollment that is ``tobedeleted`` no longer makes its
user visible). Every predicate is NULL-free (true or false, never unknown), so ``NOT`` of one is
exact: :mod:`gateway.sharing.service` counts what a policy change gains and loses with them.
"""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import (Boolean, String, Table, Text, and_, cast, exists, false, func, literal,
                        literal_column, or_, select, true, union_all)
from sqlalchemy import column as sql_column
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.elements import ColumnElement

from gateway.sharing.policy import Policy
from gateway.store.models import (AcademicSession, Class, ClassTerm, Course, Enrollment, Org,
                                  Role, User, UserAgent)
from gateway.store.resources import class_resources, course_resources, user_resources
from gateway.store.sharing import ScopeMember

ACTIVE = "active"
STUDENT = "student"

_ORGS = Org.__table__
_SESSIONS = AcademicSession.__table__
_COURSES = Course.__table__
_CLASSES = Class.__table__
_CLASS_TERMS = ClassTerm.__table__
_USERS = User.__table__
_USER_AGENTS = UserAgent.__table__
_ROLES = Role.__table__
_ENROLLMENTS = Enrollment.__table__
_MEMBERS = ScopeMember.__table__

# The kinds of rows a scope snapshot lists (gateway.sharing.snapshots).
CLASS_MEMBER = "c"
USER_MEMBER = "u"
STUDENT_MEMBER = "s"
# One alias per kind of probe, built once (building aliases per request is costly). Probes are
# never nested in one another, so each may appear in several subqueries of one statement.
_MEMBER_ALIASES = {(kind, by_row): _MEMBERS.alias(f"scope_{kind}_by_{'row' if by_row else 'id'}")
                   for kind in (CLASS_MEMBER, USER_MEMBER, STUDENT_MEMBER) for by_row in (True, False)}
_CLASS_IDS_MEMBER = _MEMBERS.alias("scope_class_ids")


def _unindexed(column: ColumnElement) -> ColumnElement:
    """``column || ''``: the same value, but SQLite will not pick an index on it.

    Without ``ANALYZE`` statistics SQLite assumes that an equality on any index's first column
    (every roster index starts with ``district_id``) selects about ten rows, and may then search
    the enrollments of a user through ``(district_id, status)``, i.e. every active enrollment of
    the district. Hiding the unselective columns from it leaves only the intended index.
    """
    return column.concat(literal_column("''"))


def json_overlaps(column: ColumnElement, values: Iterable[str], dialect: str) -> ColumnElement[bool]:
    """Some element of the JSON array in ``column`` is one of ``values`` (false, never NULL, for a
    NULL column or a non-array)."""
    values = sorted(set(values))
    if not values:
        return false()
    if dialect == "postgresql":
        # ?| tests top-level array elements (strings) against a text[]; NULL becomes false.
        test = cast(column, JSONB).op("?|", return_type=Boolean)(
            cast(literal(values, type_=ARRAY(Text)), ARRAY(Text)))
        return func.coalesce(test, false())
    elements = func.json_each(column).table_valued(sql_column("value", String))
    return exists(select(literal_column("1")).select_from(elements)
                  .where(elements.c.value.in_(values)))


def json_is_empty(column: ColumnElement, dialect: str) -> ColumnElement[bool]:
    """The JSON array in ``column`` has no element (or the column is NULL or not an array)."""
    if dialect == "postgresql":
        as_jsonb = cast(column, JSONB)
        return func.coalesce(func.jsonb_typeof(as_jsonb) != "array", true()) | \
            (as_jsonb == cast(literal("[]"), JSONB))
    return func.coalesce(func.json_array_length(column), 0) == 0


STRATEGIES = ("exists", "sets")


class Scope:
    """The row-scope predicates of one policy (None: nothing visible) in one district.

    Whether a user is visible can be asked two ways, which select exactly the same rows:

    - ``exists``: per row, correlated ``EXISTS`` through the user's own enrollments and roles.
      Cheap per row, and a page stops as soon as it is full: best when much of the district is in
      scope (schools, grades, rules).
    - ``sets``: ``user IN (SELECT ...)``, the visible users computed once per statement from the
      in-scope classes. Costs the size of the scope, whatever the district's: best when the scope
      is a short list of classes.

    The default follows the policy's shape: ``sets`` for a class list, ``exists`` otherwise.
    """

    def __init__(self, policy: Policy | None, district_id: int, dialect: str,
                 strategy: str | None = None, members: ColumnElement[Any] | None = None) -> None:
        self.policy = policy
        self.district_id = district_id
        self.dialect = dialect
        # The id of the policy's scope snapshot (gateway.sharing.snapshots), usually a scalar
        # subquery: classes and users are then in scope when listed there, which is one index
        # probe instead of the rules below.
        self.members = members
        if strategy is None:
            strategy = "sets" if policy is not None and policy.classes is not None else "exists"
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}")
        self.strategy = strategy

    # -- the building blocks ----------------------------------------------------------------

    def _d(self, table: Table) -> ColumnElement[bool]:
        return table.c.district_id == self.district_id

    @property
    def class_restricted(self) -> bool:
        """Whether some classes are out of scope (otherwise every class of the district is in)."""
        p = self.policy
        return bool(p.schools is not None or p.classes is not None or p.grades is not None
                    or p.class_rules)

    def _member(self, kind: str, *, row_id: ColumnElement | None = None,
                sourced_id: ColumnElement | None = None) -> ColumnElement[bool]:
        """The row is listed in the snapshot as ``kind`` (by primary key or by sourcedId)."""
        m = _MEMBER_ALIASES[kind, row_id is not None]
        key = m.c.row_id == row_id if row_id is not None else m.c.sourced_id == sourced_id
        return exists(select(literal_column("1")).select_from(m).where(
            m.c.snapshot_id == self.members, m.c.kind == kind, key))

    def class_conditions(self, k: Table) -> list[ColumnElement[bool]]:
        """The conditions (ANDed) on a classes table ``k`` for the class to be in scope."""
        p = self.policy
        conds = [self._d(k)]
        if self.members is not None:
            conds.append(self._member(CLASS_MEMBER, row_id=k.c.id))
            return conds
        if p.schools is not None:
            conds.append(k.c.school_sourced_id.in_(sorted(p.schools)))
        if p.classes is not None:
            conds.append(k.c.sourced_id.in_(sorted(p.classes)))
        if p.grades is not None:
            course = _COURSES.alias("scope_grade_course")
            conds.append(or_(
                json_overlaps(k.c.grades, p.grades, self.dialect),
                and_(json_is_empty(k.c.grades, self.dialect), exists(
                    select(literal_column("1")).select_from(course).where(
                        self._d(course), course.c.sourced_id == k.c.course_sourced_id,
                        json_overlaps(course.c.grades, p.grades, self.dialect))))))
        if p.class_rules:
            conds.append(or_(*(self._rule(k, rule) for rule in p.class_rules)))
        return conds

    def _rule(self, k: Table, rule) -> ColumnElement[bool]:
        conds: list[ColumnElement[bool]] = []
        if rule.subject is not None:
            course = _COURSES.alias("scope_subject_course")
            conds.append(or_(
                json_overlaps(k.c.subjects, [rule.subject], self.dialect),
                exists(select(literal_column("1")).select_from(course).where(
                    self._d(course), course.c.sourced_id == k.c.course_sourced_id,
                    json_overlaps(course.c.subjects, [rule.subject], self.dialect)))))
        if rule.course_code is not None:
            course = _COURSES.alias("scope_code_course")
            conds.append(exists(select(literal_column("1")).select_from(course).where(
                self._d(course), course.c.sourced_id == k.c.course_sourced_id,
                course.c.course_code == rule.course_code)))
        if rule.title_contains is not None:
            conds.append(k.c.title.icontains(rule.title_contains, autoescape=True))
        return and_(*conds) if conds else true()

    def in_scope_class_ids(self):
        """``SELECT sourced_id FROM classes WHERE <in scope>`` (uncorrelated: computed once)."""
        if self.members is not None:
            m = _CLASS_IDS_MEMBER
            return select(m.c.sourced_id).where(m.c.snapshot_id == self.members,
                                                m.c.kind == CLASS_MEMBER)
        k = _CLASSES.alias("scope_class")
        return select(k.c.sourced_id).where(*self.class_conditions(k))

    def class_in_scope(self, class_sourced_id: ColumnElement) -> ColumnElement[bool] | None:
        """The class named by ``class_sourced_id`` is in scope (None: every class is)."""
        if not self.class_restricted:
            return None
        if self.members is not None:
            return self._member(CLASS_MEMBER, sourced_id=class_sourced_id)
        return class_sourced_id.in_(self.in_scope_class_ids())

    def _enrolled(self, user_sourced_id: ColumnElement, students_only: bool) -> ColumnElement[bool]:
        e = _ENROLLMENTS.alias("scope_enrollment")
        # Searched by (district_id, user_sourced_id): status, role and class are only checked.
        conds = [self._d(e), e.c.user_sourced_id == user_sourced_id,
                 _unindexed(e.c.status) == ACTIVE]
        if students_only:
            conds.append(_unindexed(e.c.role) == STUDENT)
        in_scope = self.class_in_scope(_unindexed(e.c.class_sourced_id))
        if in_scope is not None:
            conds.append(in_scope)
        return exists(select(literal_column("1")).select_from(e).where(*conds))

    def _school_student(self, user_sourced_id: ColumnElement,
                        grades: ColumnElement | None) -> ColumnElement[bool]:
        """School mode: an active student role at an in-scope school, and a grade in scope.
        ``grades`` is the user's grades column when the caller has the users table at hand."""
        p = self.policy
        r = _ROLES.alias("scope_role")
        # Searched by (district_id, role, user_sourced_id).
        conds = [self._d(r), r.c.user_sourced_id == user_sourced_id, r.c.role == STUDENT,
                 _unindexed(r.c.status) == ACTIVE]
        if p.schools is not None:
            conds.append(_unindexed(r.c.org_sourced_id).in_(sorted(p.schools)))
        test = exists(select(literal_column("1")).select_from(r).where(*conds))
        if p.grades is None:
            return test
        if grades is not None:
            return and_(test, json_overlaps(grades, p.grades, self.dialect))
        u = _USERS.alias("scope_grade_user")
        return and_(test, exists(select(literal_column("1")).select_from(u).where(
            self._d(u), u.c.sourced_id == user_sourced_id,
            json_overlaps(u.c.grades, p.grades, self.dialect))))

    def student_visible(self, user_sourced_id: ColumnElement,
                        grades: ColumnElement | None = None) -> ColumnElement[bool]:
        """The user named by ``user_sourced_id`` is a visible student."""
        if self.members is not None:
            # The snapshot lists students apart only when they differ from the visible users.
            kind = USER_MEMBER if self.policy.all_users else STUDENT_MEMBER
            return self._member(kind, sourced_id=user_sourced_id)
        if self.strategy == "sets":
            return user_sourced_id.in_(self.visible_user_ids(True))
        paths = [self._enrolled(user_sourced_id, students_only=True)]
        if self.policy.school_mode:
            paths.append(self._school_student(user_sourced_id, grades))
        return or_(*paths)

    def visible_user_ids(self, students_only: bool):
        """An uncorrelated SELECT of the sourcedIds of the visible users (or only students), the
        ``sets`` strategy; a user may appear more than once."""
        p = self.policy
        e = _ENROLLMENTS.alias("set_enrollment")
        conds = [self._d(e), _unindexed(e.c.status) == ACTIVE]
        if students_only:
            conds.append(_unindexed(e.c.role) == STUDENT)
        in_scope = self.class_in_scope(e.c.class_sourced_id)
        if in_scope is not None:
            conds.append(in_scope)
        parts = [select(e.c.user_sourced_id).where(*conds)]
        if p.school_mode:
            r = _ROLES.alias("set_role")
            conds = [self._d(r), r.c.role == STUDENT, _unindexed(r.c.status) == ACTIVE]
            if p.schools is not None:
                conds.append(r.c.org_sourced_id.in_(sorted(p.schools)))
            if p.grades is not None:
                u = _USERS.alias("set_grade_user")
                conds.append(exists(select(literal_column("1")).select_from(u).where(
                    self._d(u), u.c.sourced_id == r.c.user_sourced_id,
                    json_overlaps(u.c.grades, p.grades, self.dialect))))
            parts.append(select(r.c.user_sourced_id).where(*conds))
        if p.all_users and not students_only:
            parts.append(self._staff_ids())
        if p.shares_agents and not students_only:
            ua = _USER_AGENTS.alias("set_agent")
            # Searched by the (district_id, user_sourced_id, agent_sourced_id) unique index.
            parts.append(select(ua.c.agent_sourced_id).where(
                self._d(ua), ua.c.user_sourced_id.in_(self.visible_user_ids(True))))
        return parts[0] if len(parts) == 1 else union_all(*parts)

    def user_visible(self, user_sourced_id: ColumnElement,
                     grades: ColumnElement | None = None) -> ColumnElement[bool]:
        """The user named by ``user_sourced_id`` is visible (see the module's rules)."""
        if self.policy.whole_district:
            return true()
        if self.members is not None:
            return self._member(USER_MEMBER, sourced_id=user_sourced_id)
        if self.strategy == "sets":
            return user_sourced_id.in_(self.visible_user_ids(False))
        paths = [self._enrolled(user_sourced_id, students_only=False)]
        if self.policy.school_mode:
            paths.append(self._school_student(user_sourced_id, grades))
        if self.policy.all_users:
            paths.append(user_sourced_id.in_(self._staff_ids()))
        if self.policy.shares_agents:
            # The agent's links are found by (district_id, agent_sourced_id) through their row
            # ids: asked for user_sourced_id directly, SQLite without statistics prefers the
            # covering (district_id, user_sourced_id, agent_sourced_id) index, i.e. a scan.
            link = _USER_AGENTS.alias("scope_agent_link")
            ua = _USER_AGENTS.alias("scope_agent_of")
            # Two levels below the agent's row: correlate explicitly (SQLAlchemy auto-correlates
            # only to the immediately enclosing SELECT, and would cross-join the outer table).
            links = select(link.c.id).where(
                self._d(link), link.c.agent_sourced_id == user_sourced_id).correlate_except(link)
            paths.append(exists(select(literal_column("1")).select_from(ua).where(
                ua.c.id.in_(links), self.student_visible(ua.c.user_sourced_id))))
        return or_(*paths)

    def _staff_ids(self):
        """``allUsers``: an uncorrelated SELECT of the users holding an active non-student role
        at an in-scope school."""
        r = _ROLES.alias("scope_staff_role")
        return select(r.c.user_sourced_id).where(
            self._d(r), r.c.role != STUDENT, _unindexed(r.c.status) == ACTIVE,
            r.c.org_sourced_id.in_(self._scope_schools_or_all()))

    def _scope_schools_or_all(self):
        """The in-scope schools, also when every school is (then: every org of the district)."""
        if self.policy.school_mode and self.policy.schools is None:
            o = _ORGS.alias("scope_any_org")
            return select(o.c.sourced_id).where(self._d(o))
        return self._scope_schools()

    def _scope_schools(self):
        """``SELECT`` of the sourcedIds of in-scope schools (not in school mode with all schools)."""
        p = self.policy
        if p.school_mode:
            return sorted(p.schools)
        k = _CLASSES.alias("scope_school_class")
        return select(k.c.school_sourced_id).where(*self.class_conditions(k))

    def _scope_terms(self):
        ct = _CLASS_TERMS.alias("scope_class_term")
        conds = [self._d(ct)]
        in_scope = self.class_in_scope(ct.c.class_sourced_id)
        if in_scope is not None:
            conds.append(in_scope)
        return select(ct.c.term_sourced_id).where(*conds)

    # -- one predicate per entity -----------------------------------------------------------

    def where(self, entity: str, table: Table) -> ColumnElement[bool]:
        """The predicate selecting the rows of ``table`` (the store table of ``entity``) in scope."""
        if self.policy is None:
            return false()
        build = getattr(self, "_where_" + entity, None)
        if build is None:
            # Fail closed: an entity this module does not know is entirely hidden.
            return false()
        return build(table)

    def _where_class(self, k: Table) -> ColumnElement[bool]:
        return and_(*self.class_conditions(k))

    def _where_user(self, u: Table) -> ColumnElement[bool]:
        if self.members is not None and not self.policy.whole_district:
            return and_(self._d(u), self._member(USER_MEMBER, row_id=u.c.id))
        return and_(self._d(u), self.user_visible(u.c.sourced_id, u.c.grades))

    def _where_enrollment(self, e: Table) -> ColumnElement[bool]:
        conds = [self._d(e)]
        in_scope = self.class_in_scope(e.c.class_sourced_id)
        if in_scope is not None:
            conds.append(in_scope)
        # An active enrollment in an in-scope class makes its user visible by itself; only the
        # others need their user looked at.
        conds.append(or_(_unindexed(e.c.status) == ACTIVE, self.user_visible(e.c.user_sourced_id)))
        return and_(*conds)

    def _where_demographics(self, d: Table) -> ColumnElement[bool]:
        if not self.policy.shares_entity("demographics"):
            return false()
        if self.policy.all_users:
            return and_(self._d(d), self.user_visible(d.c.sourced_id))
        return and_(self._d(d), self.student_visible(d.c.sourced_id))

    def _where_course(self, c: Table) -> ColumnElement[bool]:
        p = self.policy
        if not self.class_restricted:
            return self._d(c)
        k = _CLASSES.alias("scope_course_class")
        # Uncorrelated: the courses of in-scope classes are computed once per statement.
        paths = [c.c.sourced_id.in_(select(k.c.course_sourced_id).where(*self.class_conditions(k)))]
        if p.school_mode:
            conds = []
            if p.schools is not None:
                conds.append(c.c.org_sourced_id.in_(sorted(p.schools)))
            if p.grades is not None:
                conds.append(json_overlaps(c.c.grades, p.grades, self.dialect))
            paths.append(and_(*conds) if conds else true())
        return and_(self._d(c), or_(*paths))

    def _where_org(self, o: Table) -> ColumnElement[bool]:
        p = self.policy
        if p.school_mode and p.schools is None:
            return self._d(o)
        schools = self._scope_schools()
        child = _ORGS.alias("scope_child_org")
        parents = select(child.c.parent_sourced_id).where(
            self._d(child), child.c.parent_sourced_id.is_not(None),
            child.c.sourced_id.in_(schools))
        return and_(self._d(o), or_(o.c.sourced_id.in_(schools), o.c.sourced_id.in_(parents)))

    def _where_academicSession(self, s: Table) -> ColumnElement[bool]:
        p = self.policy
        if p.school_mode and p.schools is None:
            return self._d(s)
        terms = self._scope_terms()
        child = _SESSIONS.alias("scope_child_session")
        parents = select(child.c.parent_sourced_id).where(
            self._d(child), child.c.parent_sourced_id.is_not(None),
            child.c.sourced_id.in_(terms))
        # A NULL parent must not make the IN unknown: the predicates stay true or false.
        grading_period = and_(s.c.parent_sourced_id.is_not(None), s.c.parent_sourced_id.in_(terms))
        return and_(self._d(s), or_(s.c.sourced_id.in_(terms), grading_period,
                                    s.c.sourced_id.in_(parents)))


    def _where_resource(self, r: Table) -> ColumnElement[bool]:
        # A resource describes content, not a person: it is in scope when an active link of the
        # resources files gives its use to a class, a course or a person in scope (and so an
        # app never learns of content used only outside what it may see).
        links = []
        for link, owner, where_owner in (
                (class_resources, "class_sourced_id", self._class_link_in_scope),
                (course_resources, "course_sourced_id", self._course_link_in_scope),
                (user_resources, "user_sourced_id", self._user_link_in_scope)):
            k = link.alias(f"scope_{link.name}")
            links.append(r.c.sourced_id.in_(select(k.c.resource_sourced_id).where(
                self._d(k), _unindexed(k.c.status) == ACTIVE, where_owner(k.c[owner]))))
        return and_(self._d(r), or_(*links))

    def _class_link_in_scope(self, class_sourced_id: ColumnElement) -> ColumnElement[bool]:
        in_scope = self.class_in_scope(class_sourced_id)
        return true() if in_scope is None else in_scope

    def _course_link_in_scope(self, course_sourced_id: ColumnElement) -> ColumnElement[bool]:
        c = _COURSES.alias("scope_resource_course")
        return course_sourced_id.in_(select(c.c.sourced_id).where(self._where_course(c)))

    def _user_link_in_scope(self, user_sourced_id: ColumnElement) -> ColumnElement[bool]:
        return self.user_visible(user_sourced_id)


def student_role_exists(user_sourced_id: ColumnElement, district_id: int) -> ColumnElement[bool]:
    """The user holds a ``student`` role (roles table): who counts as a student in previews."""
    return _role_exists(user_sourced_id, district_id, STUDENT)


def teacher_role_exists(user_sourced_id: ColumnElement, district_id: int) -> ColumnElement[bool]:
    """The user holds a ``teacher`` role (roles table): who counts as a teacher in previews."""
    return _role_exists(user_sourced_id, district_id, "teacher")


def _role_exists(user_sourced_id: ColumnElement, district_id: int, role: str) -> ColumnElement[bool]:
    r = _ROLES.alias("preview_role")
    return exists(select(literal_column("1")).select_from(r).where(
        r.c.district_id == district_id, r.c.user_sourced_id == user_sourced_id, r.c.role == role))
