"""Random small districts written straight into the store, and an independent statement of the
scope rules in plain Python (the oracle the SQL predicates are checked against)."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.orm import Session

from gateway.sharing.policy import MASKABLE, PSEUDONYMIZABLE, Policy, parse_policy
from gateway.store.models import (AcademicSession, Class, ClassTerm, Course, Demographics, District,
                                  Enrollment, Org, Role, User, UserAgent, UserProfile)

GRADES = ("KG", "03", "09", "10")
SUBJECTS = ("Math", "Science", "Art")
CODES = ("M1", "S1", "A1")
TITLES = ("Math 3A", "Biology", "Art Studio", "Homeroom", "bio lab")
STATUSES = ("active", "active", "active", "tobedeleted")
TERMS = ("t1", "t2")
WHEN = dt.datetime(2026, 9, 1, 12, 0, 0)


@dataclasses.dataclass
class World:
    """One generated district, as rows keyed by store column names."""

    orgs: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
    courses: list[dict[str, Any]]
    classes: list[dict[str, Any]]
    users: list[dict[str, Any]]
    roles: list[dict[str, Any]]
    enrollments: list[dict[str, Any]]
    demographics: list[dict[str, Any]]
    profiles: list[dict[str, Any]]


def _grades(draw) -> list[str] | None:
    chosen = draw(st.lists(st.sampled_from(GRADES), unique=True, max_size=2))
    return chosen or None


@st.composite
def worlds(draw) -> World:
    """A random district: 1-3 schools (and a department), a year with two terms and their grading
    periods, courses, classes, students, teachers, parents and an administrator."""
    school_ids = [f"s{i}" for i in range(1, draw(st.integers(1, 3)) + 1)]
    orgs = [{"sourced_id": "d1", "name": "District", "type": "district", "identifier": "D1",
             "parent_sourced_id": None}]
    orgs += [{"sourced_id": s, "name": f"School {s}", "type": "school", "identifier": s.upper(),
              "parent_sourced_id": "d1"} for s in school_ids]
    orgs.append({"sourced_id": "dept1", "name": "Science Dept", "type": "department",
                 "identifier": None, "parent_sourced_id": school_ids[0]})
    sessions = [
        {"sourced_id": "y1", "title": "2026-2027", "type": "schoolYear", "parent_sourced_id": None},
        {"sourced_id": "t1", "title": "Fall", "type": "semester", "parent_sourced_id": "y1"},
        {"sourced_id": "t2", "title": "Spring", "type": "semester", "parent_sourced_id": "y1"},
        {"sourced_id": "g1", "title": "Q1", "type": "gradingPeriod", "parent_sourced_id": "t1"},
        {"sourced_id": "g2", "title": "Q3", "type": "gradingPeriod", "parent_sourced_id": "t2"},
        {"sourced_id": "y0", "title": "2025-2026", "type": "schoolYear", "parent_sourced_id": None},
    ]
    courses = []
    for i in range(1, draw(st.integers(1, 4)) + 1):
        courses.append({
            "sourced_id": f"c{i}", "title": f"Course {i}", "org_sourced_id": draw(st.sampled_from(school_ids)),
            "grades": _grades(draw), "course_code": draw(st.sampled_from(CODES + (None,))),
            "subjects": draw(st.lists(st.sampled_from(SUBJECTS), unique=True, max_size=2)) or None,
            "school_year_sourced_id": "y1"})
    classes = []
    for i in range(1, draw(st.integers(1, 6)) + 1):
        classes.append({
            "sourced_id": f"k{i}", "title": draw(st.sampled_from(TITLES)),
            "course_sourced_id": draw(st.sampled_from([c["sourced_id"] for c in courses])),
            "school_sourced_id": draw(st.sampled_from(school_ids)), "grades": _grades(draw),
            "subjects": draw(st.lists(st.sampled_from(SUBJECTS), unique=True, max_size=2)) or None,
            "term_sourced_ids": draw(st.lists(st.sampled_from(TERMS), unique=True, min_size=1)),
            "status": draw(st.sampled_from(STATUSES))})
    kinds = draw(st.lists(st.sampled_from(["student", "student", "teacher", "parent", "administrator"]),
                          min_size=1, max_size=10))
    users, roles = [], []
    for i, kind in enumerate(kinds, 1):
        sourced_id = f"{kind[0]}-{i:02d}"
        org = "d1" if kind in ("parent", "administrator") else draw(st.sampled_from(school_ids))
        users.append({"sourced_id": sourced_id, "kind": kind, "given_name": f"Given{i}",
                      "family_name": f"Family{i}", "username": f"user{i}",
                      "email": f"user{i}@example.edu", "phone": f"555-01{i:02d}",
                      "identifier": f"ID{i}", "grades": _grades(draw) if kind == "student" else None,
                      "user_ids": [{"type": "SIS", "identifier": f"{1000 + i}"}],
                      "primary_org_sourced_id": org, "agent_sourced_ids": None})
        roles.append({"sourced_id": f"r-{sourced_id}", "user_sourced_id": sourced_id,
                      "role": kind, "org_sourced_id": org,
                      "status": draw(st.sampled_from(STATUSES)),
                      "user_profile_sourced_id": f"up-{sourced_id}" if kind == "teacher" else None})
    parents = [u["sourced_id"] for u in users if u["kind"] == "parent"]
    for user in users:
        if user["kind"] == "student" and parents:
            agents = draw(st.lists(st.sampled_from(parents), unique=True, max_size=2))
            user["agent_sourced_ids"] = agents or None
    enrollments = []
    pairs = draw(st.lists(st.tuples(st.sampled_from([u["sourced_id"] for u in users]),
                                    st.sampled_from([k["sourced_id"] for k in classes]),
                                    st.sampled_from(STATUSES)),
                          max_size=14, unique_by=lambda p: (p[0], p[1])))
    by_id = {u["sourced_id"]: u for u in users}
    schools_of = {k["sourced_id"]: k["school_sourced_id"] for k in classes}
    for n, (user_id, class_id, status) in enumerate(pairs, 1):
        kind = by_id[user_id]["kind"]
        role = "student" if kind == "student" else ("teacher" if kind == "teacher"
                                                    else "administrator")
        enrollments.append({"sourced_id": f"e{n}", "user_sourced_id": user_id,
                            "class_sourced_id": class_id, "school_sourced_id": schools_of[class_id],
                            "role": role, "status": status})
    demographics = [{"sourced_id": u["sourced_id"], "birth_date": dt.date(2015, 5, 9), "sex": "female"}
                    for u in users if draw(st.booleans())]
    profiles = [{"sourced_id": f"up-{u['sourced_id']}", "user_sourced_id": u["sourced_id"]}
                for u in users if u["kind"] == "teacher"]
    return World(orgs, sessions, courses, classes, users, roles, enrollments, demographics, profiles)


def _base(row: dict[str, Any], district_id: int) -> dict[str, Any]:
    return {"district_id": district_id, "sourced_id": row["sourced_id"],
            "status": row.get("status", "active"), "date_last_modified": WHEN, "row_hash": 0}


def insert_world(session: Session, world: World, sourced_id: str = "d1") -> int:
    """Write ``world`` into the store as district ``sourced_id``; returns the district's id."""
    district = District(sourced_id=sourced_id, name="Generated District")
    session.add(district)
    session.flush()
    d = district.id
    session.execute(insert(Org.__table__), [
        {**_base(o, d), "name": o["name"], "type": o["type"], "identifier": o["identifier"],
         "parent_sourced_id": o["parent_sourced_id"]} for o in world.orgs])
    session.execute(insert(AcademicSession.__table__), [
        {**_base(s, d), "title": s["title"], "type": s["type"], "start_date": dt.date(2026, 8, 15),
         "end_date": dt.date(2027, 6, 15), "parent_sourced_id": s["parent_sourced_id"],
         "school_year": "2027"} for s in world.sessions])
    session.execute(insert(Course.__table__), [
        {**_base(c, d), **{k: c[k] for k in ("title", "org_sourced_id", "grades", "course_code",
                                              "subjects", "school_year_sourced_id")}}
        for c in world.courses])
    session.execute(insert(Class.__table__), [
        {**_base(k, d), **{f: k[f] for f in ("title", "course_sourced_id", "school_sourced_id",
                                              "grades", "subjects", "term_sourced_ids")},
         "class_code": k["sourced_id"].upper(), "class_type": "scheduled"} for k in world.classes])
    session.execute(insert(ClassTerm.__table__), [
        {"district_id": d, "class_sourced_id": k["sourced_id"], "term_sourced_id": t}
        for k in world.classes for t in k["term_sourced_ids"]])
    session.execute(insert(User.__table__), [
        {**_base(u, d), "enabled_user": True,
         **{f: u[f] for f in ("username", "user_ids", "given_name", "family_name", "identifier",
                              "email", "phone", "agent_sourced_ids", "grades",
                              "primary_org_sourced_id")}} for u in world.users])
    links = [{"district_id": d, "user_sourced_id": u["sourced_id"], "agent_sourced_id": a}
             for u in world.users for a in (u["agent_sourced_ids"] or ())]
    if links:
        session.execute(insert(UserAgent.__table__), links)
    session.execute(insert(Role.__table__), [
        {**_base(r, d), "user_sourced_id": r["user_sourced_id"], "role_type": "primary",
         "role": r["role"], "org_sourced_id": r["org_sourced_id"],
         "user_profile_sourced_id": r["user_profile_sourced_id"]} for r in world.roles])
    if world.profiles:
        session.execute(insert(UserProfile.__table__), [
            {**_base(p, d), "user_sourced_id": p["user_sourced_id"], "profile_type": "lms",
             "vendor_id": "acme", "credential_type": "password", "username": "x"}
            for p in world.profiles])
    if world.enrollments:
        session.execute(insert(Enrollment.__table__), [
            {**_base(e, d), **{f: e[f] for f in ("user_sourced_id", "class_sourced_id",
                                                  "school_sourced_id", "role")}}
            for e in world.enrollments])
    if world.demographics:
        session.execute(insert(Demographics.__table__), [
            {**_base(x, d), "birth_date": x["birth_date"], "sex": x["sex"]}
            for x in world.demographics])
    session.flush()
    return d


# ---------------------------------------------------------------------------------- policies

@st.composite
def policy_documents(draw, world: World) -> dict[str, Any]:
    """A random valid policy document for ``world`` (ids may name records that do not exist)."""
    schools = [o["sourced_id"] for o in world.orgs if o["type"] == "school"] + ["s9"]
    classes = [k["sourced_id"] for k in world.classes] + ["k99"]
    doc: dict[str, Any] = {
        "schools": draw(st.one_of(st.just(["*"]), st.lists(st.sampled_from(schools), unique=True,
                                                            min_size=1)))}
    if draw(st.booleans()):
        doc["grades"] = draw(st.one_of(st.just(["*"]), st.lists(st.sampled_from(GRADES + ("12",)),
                                                                unique=True, min_size=1)))
    if draw(st.booleans()):
        doc["classes"] = draw(st.one_of(st.just(["*"]), st.lists(st.sampled_from(classes),
                                                                 unique=True, min_size=1)))
    if draw(st.integers(0, 3)) == 0:
        rules = []
        for _ in range(draw(st.integers(1, 2))):
            rule = {}
            if draw(st.booleans()):
                rule["subject"] = draw(st.sampled_from(SUBJECTS))
            if draw(st.booleans()):
                rule["courseCode"] = draw(st.sampled_from(CODES))
            if draw(st.booleans()) or not rule:
                rule["titleContains"] = draw(st.sampled_from(["BIO", "math", "Studio", "x%"]))
            rules.append(rule)
        doc["classRules"] = rules
    if draw(st.integers(0, 3)) == 0:
        doc["allUsers"] = draw(st.booleans())
    user_fields = ["*"] + draw(st.lists(st.sampled_from(["email", "phone", "sms", "agents",
                                                          "userProfiles", "metadata"]), unique=True))
    if draw(st.integers(0, 4)) == 0:
        user_fields = draw(st.lists(st.sampled_from(["givenName", "familyName", "username",
                                                     "email", "roles", "agents", "userIds",
                                                     "primaryOrg"]), unique=True))
    fields: dict[str, list[str]] = {"user": user_fields}
    fields["demographics"] = draw(st.sampled_from([[], ["*"], ["birthDate"], ["sex", "birthDate"]]))
    if draw(st.booleans()):
        fields["enrollment"] = draw(st.sampled_from([["*"], ["user", "class", "role"], ["role"]]))
    doc["fields"] = fields
    # Masks and pseudonyms must name shared fields: ask the parser which ones the draft grants.
    granted = parse_policy(doc).fields
    shared = [f"{entity}.{field}" for entity in ("user", "class", "org", "enrollment", "course",
                                                 "academicSession") for field in granted[entity]]
    maskable = sorted(name for name in shared if name in MASKABLE)
    masked = draw(st.lists(st.sampled_from(maskable), unique=True, max_size=2)) if maskable else []
    if masked:
        doc["mask"] = {name: MASKABLE[name] for name in masked}
    candidates = sorted(name for name in shared if name in PSEUDONYMIZABLE and name not in masked)
    doc["pseudonymize"] = draw(st.lists(st.sampled_from(candidates), unique=True, max_size=4))
    return doc


# ------------------------------------------------------------------------------------ oracle

def _overlap(values: list[str] | None, wanted: frozenset[str]) -> bool:
    return bool(values) and bool(set(values) & wanted)


class Oracle:
    """The scope rules of :mod:`gateway.sharing.scope`, restated over the generated rows."""

    def __init__(self, world: World, policy: Policy | None) -> None:
        self.w = world
        self.p = policy
        self.courses = {c["sourced_id"]: c for c in world.courses}

    def class_in_scope(self, k: dict[str, Any]) -> bool:
        p = self.p
        if p.schools is not None and k["school_sourced_id"] not in p.schools:
            return False
        if p.classes is not None and k["sourced_id"] not in p.classes:
            return False
        course = self.courses.get(k["course_sourced_id"], {})
        if p.grades is not None:
            grades = k["grades"] if k["grades"] else course.get("grades")
            if not _overlap(grades, p.grades):
                return False
        if p.class_rules:
            def matches(rule) -> bool:
                if rule.subject is not None and rule.subject not in (k["subjects"] or []) \
                        and rule.subject not in (course.get("subjects") or []):
                    return False
                if rule.course_code is not None and course.get("course_code") != rule.course_code:
                    return False
                if rule.title_contains is not None and \
                        rule.title_contains.lower() not in k["title"].lower():
                    return False
                return True
            if not any(matches(rule) for rule in p.class_rules):
                return False
        return True

    def in_scope_classes(self) -> set[str]:
        return {k["sourced_id"] for k in self.w.classes if self.class_in_scope(k)}

    def _enrolled(self, user_id: str, students_only: bool) -> bool:
        scope = self.in_scope_classes()
        return any(e["user_sourced_id"] == user_id and e["status"] == "active"
                   and e["class_sourced_id"] in scope and (not students_only or e["role"] == "student")
                   for e in self.w.enrollments)

    def _school_student(self, user_id: str) -> bool:
        p = self.p
        if not p.school_mode:
            return False
        role_ok = any(r["user_sourced_id"] == user_id and r["role"] == "student"
                      and r["status"] == "active"
                      and (p.schools is None or r["org_sourced_id"] in p.schools)
                      for r in self.w.roles)
        if not role_ok:
            return False
        if p.grades is None:
            return True
        user = next((u for u in self.w.users if u["sourced_id"] == user_id), None)
        return user is not None and _overlap(user["grades"], p.grades)

    def student_visible(self, user_id: str) -> bool:
        return self._enrolled(user_id, True) or self._school_student(user_id)

    def _scope_schools(self) -> set[str]:
        p = self.p
        if p.school_mode:
            return {o["sourced_id"] for o in self.w.orgs} if p.schools is None else set(p.schools)
        return {k["school_sourced_id"] for k in self.w.classes if self.class_in_scope(k)}

    def _staff(self, user_id: str) -> bool:
        """``allUsers``: a non-student role at an in-scope school (everyone, district-wide)."""
        p = self.p
        if not p.all_users:
            return False
        if p.school_mode and p.schools is None and p.grades is None:
            return True
        schools = self._scope_schools()
        return any(r["user_sourced_id"] == user_id and r["role"] != "student"
                   and r["status"] == "active" and r["org_sourced_id"] in schools
                   for r in self.w.roles)

    def user_visible(self, user_id: str) -> bool:
        if self._enrolled(user_id, False) or self._school_student(user_id) or self._staff(user_id):
            return True
        if self.p.shares_agents:
            return any(user_id in (u["agent_sourced_ids"] or ()) and self.student_visible(u["sourced_id"])
                       for u in self.w.users)
        return False

    def visible(self, entity: str) -> set[str]:
        """The stored sourcedIds of ``entity`` the policy lets through."""
        if self.p is None:
            return set()
        return getattr(self, "_" + entity)()

    def _class(self) -> set[str]:
        return self.in_scope_classes()

    def _user(self) -> set[str]:
        return {u["sourced_id"] for u in self.w.users if self.user_visible(u["sourced_id"])}

    def _enrollment(self) -> set[str]:
        scope = self.in_scope_classes()
        return {e["sourced_id"] for e in self.w.enrollments
                if e["class_sourced_id"] in scope and self.user_visible(e["user_sourced_id"])}

    def _demographics(self) -> set[str]:
        if not self.p.shares_entity("demographics"):
            return set()
        visible = self.user_visible if self.p.all_users else self.student_visible
        return {d["sourced_id"] for d in self.w.demographics if visible(d["sourced_id"])}

    def _course(self) -> set[str]:
        p = self.p
        scope = self.in_scope_classes()
        found = {k["course_sourced_id"] for k in self.w.classes if k["sourced_id"] in scope}
        found &= set(self.courses)
        if p.school_mode:
            found |= {c["sourced_id"] for c in self.w.courses
                      if (p.schools is None or c["org_sourced_id"] in p.schools)
                      and (p.grades is None or _overlap(c["grades"], p.grades))}
        return found

    def _org(self) -> set[str]:
        p = self.p
        if p.school_mode and p.schools is None:
            return {o["sourced_id"] for o in self.w.orgs}
        if p.school_mode:
            schools = set(p.schools)
        else:
            schools = {k["school_sourced_id"] for k in self.w.classes if self.class_in_scope(k)}
        ids = {o["sourced_id"] for o in self.w.orgs}
        parents = {o["parent_sourced_id"] for o in self.w.orgs
                   if o["sourced_id"] in schools and o["parent_sourced_id"]}
        return ids & (schools | parents)

    def _academicSession(self) -> set[str]:
        p = self.p
        ids = {s["sourced_id"] for s in self.w.sessions}
        if p.school_mode and p.schools is None:
            return ids
        terms = {t for k in self.w.classes if self.class_in_scope(k) for t in k["term_sourced_ids"]}
        found = set()
        for s in self.w.sessions:
            if s["sourced_id"] in terms or (s["parent_sourced_id"] in terms):
                found.add(s["sourced_id"])
            if s["sourced_id"] in terms and s["parent_sourced_id"]:
                found.add(s["parent_sourced_id"])
        return found & ids
