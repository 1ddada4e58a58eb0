"""The row scope, one named case per rule, on the small district (tests/bundles.py):

    s1 Springfield Elementary: k1 Math 3A (grade 03, course c1 M3 Mathematics, terms t1 t2)
                               u1 (03, agent p1) and t-hoover
    s2 Springfield High:       k2 Biology 1 (09, course c2 BIO Science, t1): u2 (09, agent p1), u3, t-krab
                               k3 Biology 2 (10, c2, t2): u4 (10), t-krab
"""
from __future__ import annotations

from typing import Callable

import pytest
from sqlalchemy import select, text

from gateway.oneroster.csv.importer import ImportOptions, import_bundle
from gateway.sharing.policy import parse_policy
from gateway.sharing.scope import STRATEGIES, Scope
from gateway.store.models import (AcademicSession, Class, Course, Demographics, District,
                                  Enrollment, Org, User)

from bundles import small_district, write_bundle

MODELS = {"org": Org, "academicSession": AcademicSession, "course": Course, "class": Class,
          "user": User, "enrollment": Enrollment, "demographics": Demographics}


@pytest.fixture
def load(database, tmp_path):
    """Import the small district after ``edit`` changed its rows; returns the district id."""
    def run(edit: Callable[[dict], None] | None = None) -> int:
        rows = small_district()
        if edit is not None:
            edit(rows)
        with database.session_scope() as session:
            assert import_bundle(session, write_bundle(tmp_path / "b", rows),
                                 ImportOptions()).outcome == "applied"
            return session.execute(select(District.id)).scalar_one()
    return run


@pytest.fixture
def seen(database):
    """What a policy lets through, per entity, on both strategies (which must agree)."""
    def run(document: dict | None, district_id: int, entity: str) -> list[str]:
        policy = None if document is None else parse_policy(document)
        table = MODELS[entity].__table__
        answers = []
        with database.sessionmaker() as session:
            for strategy in STRATEGIES:
                scope = Scope(policy, district_id, database.dialect, strategy)
                answers.append(sorted(session.execute(select(table.c.sourced_id).where(
                    table.c.district_id == district_id, scope.where(entity, table))).scalars()))
        assert answers[0] == answers[1]
        return answers[0]
    return run


def test_without_a_policy_nothing_is_visible(load, seen):
    district = load()
    for entity in MODELS:
        assert seen(None, district, entity) == [], entity


def test_all_schools_show_every_class_and_its_people_but_no_parent(load, seen):
    district = load()
    policy = {"schools": ["*"]}
    assert seen(policy, district, "class") == ["k1", "k2", "k3"]
    assert seen(policy, district, "user") == ["t-hoover", "t-krab", "u1", "u2", "u3", "u4"]
    assert seen(policy, district, "enrollment") == ["e1", "e2", "e3", "e4", "e5", "e6", "e7"]
    assert seen(policy, district, "org") == ["d1", "s1", "s2"]
    assert seen(policy, district, "academicSession") == ["t1", "t2", "y1"]
    assert seen(policy, district, "course") == ["c1", "c2"]
    # Demographics are withheld unless granted.
    assert seen(policy, district, "demographics") == []


def test_a_school_list_limits_classes_people_orgs_terms_and_courses(load, seen):
    district = load()
    policy = {"schools": ["s1"]}
    assert seen(policy, district, "class") == ["k1"]
    assert seen(policy, district, "user") == ["t-hoover", "u1"]
    assert seen(policy, district, "enrollment") == ["e1", "e2"]
    # The school and its parent, the district; not the other school.
    assert seen(policy, district, "org") == ["d1", "s1"]
    assert seen(policy, district, "academicSession") == ["t1", "t2", "y1"]
    assert seen(policy, district, "course") == ["c1"]


def test_grades_limit_classes_and_students(load, seen):
    district = load()
    policy = {"schools": ["*"], "grades": ["09"]}
    assert seen(policy, district, "class") == ["k2"]
    assert seen(policy, district, "user") == ["t-krab", "u2", "u3"]
    assert seen(policy, district, "enrollment") == ["e3", "e4", "e5"]
    assert seen(policy, district, "course") == ["c2"]


def test_a_class_list_shows_only_those_classes_and_their_people(load, seen):
    district = load()
    policy = {"schools": ["*"], "classes": ["k3"]}
    assert seen(policy, district, "class") == ["k3"]
    assert seen(policy, district, "user") == ["t-krab", "u4"]
    assert seen(policy, district, "enrollment") == ["e6", "e7"]
    assert seen(policy, district, "course") == ["c2"]
    assert seen(policy, district, "org") == ["d1", "s2"]
    assert seen(policy, district, "academicSession") == ["t2", "y1"]


def test_class_list_and_school_list_combine(load, seen):
    district = load()
    assert seen({"schools": ["s1"], "classes": ["k3"]}, district, "class") == []


@pytest.mark.parametrize("rule, classes", [
    ({"subject": "Mathematics"}, ["k1"]),        # the course's subject (the class lists none)
    ({"courseCode": "BIO"}, ["k2", "k3"]),
    ({"titleContains": "BIOLOGY 2"}, ["k3"]),    # case-insensitive
    ({"titleContains": "%"}, []),                # a literal, not a wildcard
    ({"courseCode": "BIO", "titleContains": "1"}, ["k2"]),  # all conditions of a rule
])
def test_class_rules(load, seen, rule, classes):
    district = load()
    assert seen({"schools": ["*"], "classRules": [rule]}, district, "class") == classes


def test_any_class_rule_may_match(load, seen):
    district = load()
    policy = {"schools": ["*"], "classRules": [{"subject": "Mathematics"},
                                               {"titleContains": "2"}]}
    assert seen(policy, district, "class") == ["k1", "k3"]
    assert seen(policy, district, "user") == ["t-hoover", "t-krab", "u1", "u4"]


def test_a_class_without_grades_is_judged_by_its_course(load, seen):
    def edit(rows):
        rows["classes"][2]["grades"] = ""  # k3, course c2: grades 09,10
    district = load(edit)
    assert seen({"schools": ["*"], "grades": ["10"]}, district, "class") == ["k3"]
    assert seen({"schools": ["*"], "grades": ["03"]}, district, "class") == ["k1"]


def test_students_need_an_active_enrollment(load, seen):
    def edit(rows):
        rows["enrollments"][5]["status"] = "tobedeleted"  # e6: u4 in k3
    district = load(edit)
    policy = {"schools": ["*"], "classes": ["k3"]}
    assert seen(policy, district, "user") == ["t-krab"]
    # Its enrollment goes with the student; the teacher's stays.
    assert seen(policy, district, "enrollment") == ["e7"]


def _unenrolled_student(rows):
    rows["users"].append({"sourcedId": "u5", "enabledUser": "true", "username": "nelson", "givenName": "Nelson",
                          "familyName": "Muntz", "grades": "09", "primaryOrgSourcedId": "s2"})
    rows["roles"].append({"sourcedId": "r-u5", "userSourcedId": "u5", "roleType": "primary",
                          "role": "student", "orgSourcedId": "s2"})


def test_school_scope_shows_students_of_the_school_and_grade_without_enrollment(load, seen):
    district = load(_unenrolled_student)
    assert "u5" in seen({"schools": ["s2"]}, district, "user")
    assert "u5" in seen({"schools": ["*"], "grades": ["09"]}, district, "user")
    assert "u5" not in seen({"schools": ["s2"], "grades": ["10"]}, district, "user")
    assert "u5" not in seen({"schools": ["s1"]}, district, "user")
    # A class list or rules scope by classes only.
    assert "u5" not in seen({"schools": ["*"], "classes": ["k2"]}, district, "user")
    assert "u5" not in seen({"schools": ["*"], "classRules": [{"courseCode": "BIO"}]}, district,
                            "user")


def test_teachers_only_if_they_teach_an_in_scope_class(load, seen):
    district = load()
    assert seen({"schools": ["s1"]}, district, "user") == ["t-hoover", "u1"]
    assert "t-krab" in seen({"schools": ["*"], "classes": ["k3"]}, district, "user")


def test_agents_only_when_shared_and_only_those_of_visible_students(load, seen):
    district = load()
    shared = {"fields": {"user": ["*", "agents"]}}
    assert "p1" not in seen({"schools": ["*"]}, district, "user")
    assert "p1" in seen({"schools": ["s1"], **shared}, district, "user")   # u1's parent
    assert "p1" in seen({"schools": ["*"], "classes": ["k2"], **shared}, district, "user")
    # u4 has no agent: p1 is nobody's parent in that scope.
    assert "p1" not in seen({"schools": ["*"], "classes": ["k3"], **shared}, district, "user")


def test_administrators_are_never_visible(load, seen):
    def edit(rows):
        rows["users"].append({"sourcedId": "a1", "enabledUser": "true", "username": "skinner", "givenName": "Seymour",
                              "familyName": "Skinner", "primaryOrgSourcedId": "s1"})
        rows["roles"].append({"sourcedId": "r-a1", "userSourcedId": "a1", "roleType": "primary",
                              "role": "principal", "orgSourcedId": "s1"})
    district = load(edit)
    assert "a1" not in seen({"schools": ["*"], "fields": {"user": ["*", "agents"]}}, district,
                            "user")


def test_demographics_only_for_visible_students_and_only_if_granted(load, seen):
    def edit(rows):
        rows["demographics"].append({"sourcedId": "t-krab", "sex": "female"})
    district = load(edit)
    granted = {"fields": {"demographics": ["*"]}}
    assert seen({"schools": ["*"]}, district, "demographics") == []
    # The teacher is visible, her demographics are not: they are only shared for students.
    assert seen({"schools": ["*"], **granted}, district, "demographics") == ["u1", "u2"]
    assert seen({"schools": ["s2"], "grades": ["09"], **granted}, district, "demographics") == ["u2"]
    assert seen({"schools": ["*"], "fields": {"demographics": ["sex"]}}, district,
                "demographics") == ["u1", "u2"]


def test_orgs_are_the_schools_in_scope_and_their_parents_not_their_children(load, seen):
    def edit(rows):
        rows["orgs"].append({"sourcedId": "dept", "name": "Science", "type": "department",
                             "parentSourcedId": "s2"})
    district = load(edit)
    assert seen({"schools": ["s2"]}, district, "org") == ["d1", "s2"]
    assert seen({"schools": ["*"], "classes": ["k1"]}, district, "org") == ["d1", "s1"]
    assert seen({"schools": ["*"]}, district, "org") == ["d1", "dept", "s1", "s2"]


def test_terms_are_those_of_in_scope_classes_with_parents_and_grading_periods(load, seen):
    def edit(rows):
        rows["academicSessions"] += [
            {"sourcedId": "g1", "title": "Q1", "type": "gradingPeriod", "startDate": "2026-08-15",
             "endDate": "2026-10-15", "parentSourcedId": "t1", "schoolYear": "2027"},
            {"sourcedId": "g3", "title": "Q3", "type": "gradingPeriod", "startDate": "2027-01-05",
             "endDate": "2027-03-15", "parentSourcedId": "t2", "schoolYear": "2027"},
            {"sourcedId": "y0", "title": "2025-2026", "type": "schoolYear",
             "startDate": "2025-08-15", "endDate": "2026-06-15", "schoolYear": "2026"}]
    district = load(edit)
    assert seen({"schools": ["*"], "classes": ["k2"]}, district, "academicSession") == \
        ["g1", "t1", "y1"]
    # All schools: the whole district calendar.
    assert seen({"schools": ["*"]}, district, "academicSession") == \
        ["g1", "g3", "t1", "t2", "y0", "y1"]


def test_courses_of_a_school_scope_include_those_without_classes(load, seen):
    def edit(rows):
        rows["courses"].append({"sourcedId": "c3", "title": "Chemistry", "courseCode": "CHEM",
                                "grades": "10", "orgSourcedId": "s2", "schoolYearSourcedId": "y1"})
    district = load(edit)
    assert seen({"schools": ["s2"]}, district, "course") == ["c2", "c3"]
    assert seen({"schools": ["s2"], "grades": ["09"]}, district, "course") == ["c2"]
    assert seen({"schools": ["*"], "classes": ["k2", "k3"]}, district, "course") == ["c2"]


def test_another_districts_rows_never_pass(load, seen, database):
    district = load()
    assert seen({"schools": ["*"]}, district + 1, "user") == []


# -- index use ------------------------------------------------------------------------------------

POLICIES = [
    {"schools": ["s1", "s2"], "grades": ["03", "09"], "fields": {"user": ["*", "agents"],
                                                                 "demographics": ["*"]}},
    {"schools": ["*"], "classes": ["k1"], "fields": {"user": ["*", "agents"]}},
    {"schools": ["*"], "classRules": [{"subject": "Mathematics", "courseCode": "M3"}],
     "fields": {"user": ["*", "agents"]}},
]


@pytest.mark.parametrize("document", POLICIES)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_lookup_searches_an_index(database, load, document, strategy):
    if database.dialect != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    district = load()
    scope = Scope(parse_policy(document), district, "sqlite", strategy)
    with database.sessionmaker() as session:
        for entity, model in MODELS.items():
            table = model.__table__
            predicate = scope.where(entity, table)
            if str(predicate) == "false":
                continue  # an entity the policy does not share at all: nothing to search
            query = (select(table.c.sourced_id)
                     .where(table.c.district_id == district, predicate)
                     .order_by(table.c.sourced_id).limit(100))
            sql = str(query.compile(database.engine, compile_kwargs={"literal_binds": True}))
            plan = [row[3] for row in session.execute(text("EXPLAIN QUERY PLAN " + sql))]
            for step in plan:
                # Table scans would read a whole district per row; only the JSON arrays of one
                # row (json_each virtual tables) may be scanned.
                assert not step.startswith("SCAN") or "VIRTUAL TABLE" in step, (entity, step, plan)
            assert any("INDEX" in step or "PRIMARY KEY" in step for step in plan), (entity, plan)


def test_the_status_index_is_never_used_to_find_a_users_enrollments(database, load):
    if database.dialect != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    district = load()
    scope = Scope(parse_policy({"schools": ["s1"]}), district, "sqlite", "exists")
    users = User.__table__
    query = select(users.c.sourced_id).where(users.c.district_id == district,
                                             scope.where("user", users))
    sql = str(query.compile(database.engine, compile_kwargs={"literal_binds": True}))
    with database.sessionmaker() as session:
        plan = [row[3] for row in session.execute(text("EXPLAIN QUERY PLAN " + sql))]
    assert "SEARCH scope_enrollment USING INDEX ix_enrollments_district_id_user_sourced_id " \
           "(district_id=? AND user_sourced_id=?)" in plan
    assert "SEARCH scope_role USING INDEX ix_roles_district_id_role_user_sourced_id " \
           "(district_id=? AND role=? AND user_sourced_id=?)" in plan
    assert not any("status" in step for step in plan)
