"""The filter parameter through HTTP (1.2 REST binding §3.4, Filtering): every operator, AND/OR
and parentheses, quoting, dates, dotted paths into sub-objects, and each error's exact body."""
from __future__ import annotations

import datetime as dt

import pytest

from gateway.oneroster.service import filter_field_names

from rostering_api import error_body

IMPORTED = dt.datetime(2026, 11, 28, 12, 0, 0)


@pytest.fixture
def api(load_small, api_for):
    """The small district with an O'Brien, a locker number in metadata, imported at IMPORTED."""
    def edit(rows):
        rows["users"][3]["familyName"] = "O'Brien"  # u4
        rows["users"][1]["metadata.locker"] = "B-12"  # u2
    load_small(edit, metadata={"users": ["locker"]}, now=IMPORTED)
    return api_for("d1")


def users(api, expression: str) -> list[str]:
    return api.ids("/users", filter=expression)


def test_each_operator(api):
    assert users(api, "givenName='Lisa'") == ["u1"]
    assert users(api, "familyName!='Simpson'") == ["u3", "u4", "t-hoover", "t-krab"]
    assert users(api, "username>'martin'") == ["u3"]
    assert users(api, "username>='martin'") == ["u3", "u4"]
    assert users(api, "username<'hoover'") == ["u2"]
    assert users(api, "username<='bart'") == ["u2"]
    # ~ is a case-insensitive "contains".
    assert users(api, "email~'EXAMPLE.EDU'") == ["u1", "t-hoover", "t-krab"]
    # != also matches records that lack the field (NULL): a missing email differs from any email.
    assert users(api, "email!='lisa@example.edu'") == ["u2", "u3", "u4", "t-hoover", "t-krab",
                                                       "p1"]


def test_and_or_parentheses_and_precedence(api):
    assert users(api, "givenName='Lisa' OR givenName='Bart'") == ["u1", "u2"]
    assert users(api, "familyName='Simpson' AND email~'example.com'") == ["p1"]
    assert users(api, "givenName='Lisa' or givenName='Bart' and grades='09'") == ["u1", "u2"]
    # AND binds tighter than OR: Lisa OR (Bart AND grade 03).
    assert users(api, "givenName='Lisa' OR givenName='Bart' AND grades='03'") == ["u1"]
    assert users(api, "(givenName='Lisa' OR givenName='Bart') AND grades='03'") == ["u1"]
    assert users(api, "(roles.role='student' OR roles.role='teacher') AND "
                      "primaryOrg.sourcedId='s1'") == ["u1", "t-hoover"]
    assert users(api, "((username='lisa') OR (username='bart' AND (grades='09')))") == ["u1", "u2"]
    assert users(api, "  givenName = 'Lisa'  ") == ["u1"]


def test_quotes_in_values_are_doubled(api):
    assert users(api, "familyName='O''Brien'") == ["u4"]
    assert users(api, "familyName~'''b'") == ["u4"]
    assert users(api, "familyName='O'") == []
    # % and _ are literal in ~, never wildcards.
    assert users(api, "email~'%'") == []
    assert users(api, "username~'_'") == []


def test_dates_compare_as_dates(api):
    assert users(api, "dateLastModified>='2026-11-28'") == [
        "u1", "u2", "u3", "u4", "t-hoover", "t-krab", "p1"]
    assert users(api, "dateLastModified>'2026-11-28T12:00:00Z'") == []
    assert len(users(api, "dateLastModified>'2026-11-28T11:59:59.999Z'")) == 7
    # An offset is converted to UTC: 13:00+01:00 is the import's 12:00Z.
    assert len(users(api, "dateLastModified='2026-11-28T13:00:00+01:00'")) == 7
    assert api.ids("/demographics", filter="birthDate<'2015-01-01'") == ["u2"]
    assert api.ids("/academicSessions", filter="startDate>='2027-01-01'") == ["t2"]
    assert api.ids("/enrollments", filter="beginDate='2026-08-15'") == []


def test_dotted_paths_into_sub_objects(api):
    assert users(api, "roles.role='teacher'") == ["t-hoover", "t-krab"]
    assert users(api, "roles.org.sourcedId='s2'") == ["u2", "u3", "u4", "t-krab"]
    assert len(users(api, "roles.roleType='primary'")) == 7
    # On a list, != means "no item equals".
    assert users(api, "roles.role!='student'") == ["t-hoover", "t-krab", "p1"]
    assert users(api, "userProfiles.vendorId='acme'") == ["t-hoover"]
    assert users(api, "agents.sourcedId='p1'") == ["u1", "u2"]
    assert users(api, "primaryOrg.sourcedId='s1'") == ["u1", "t-hoover"]
    assert users(api, "metadata.locker='B-12'") == ["u2"]
    assert users(api, "metadata.locker~'b'") == ["u2"]
    assert api.ids("/classes", filter="terms.sourcedId='t2'") == ["k1", "k3"]
    assert api.ids("/classes", filter="school.sourcedId='s1'") == ["k1"]
    assert api.ids("/classes", filter="course.sourcedId='c2' AND periods='3'") == ["k2"]
    assert api.ids("/enrollments", filter="user.sourcedId='u2'") == ["e3"]
    assert api.ids("/enrollments", filter="class.sourcedId='k2' AND role='teacher'") == ["e5"]
    assert api.ids("/orgs", filter="parent.sourcedId='d1'") == ["s1", "s2"]
    assert api.ids("/courses", filter="schoolYear.sourcedId='y1' AND org.sourcedId='s1'") == ["c1"]


def test_lists_booleans_and_kinds(api):
    assert users(api, "grades='09'") == ["u2", "u3"]
    assert users(api, "grades~'1'") == ["u4"]
    assert len(users(api, "enabledUser='true'")) == 7
    assert users(api, "enabledUser='FALSE'") == []
    assert api.ids("/enrollments", filter="primary='true'") == ["e2", "e5", "e7"]
    # The filter is ANDed with the kind of the path: no OR reaches beyond the students.
    assert api.ids("/students", filter="roles.role='teacher' OR givenName='Lisa'") == ["u1"]
    assert api.ids("/schools", filter="type='district'") == []
    # ... and with a nested path's parent.
    assert api.ids("/classes/k2/students", filter="givenName='Milhouse' OR username~''") == [
        "u2", "u3"]


def test_a_filter_field_that_does_not_exist_is_invalid_filter_field(api):
    response = api.get("/users", filter="givenName='Lisa' AND nickname='Lis'")
    assert response.status_code == 400
    known = ", ".join(sorted(filter_field_names("user")))
    assert response.get_json() == error_body(
        "invalid_filter_field",
        "Invalid filter at character 22: 'nickname' is not a field this collection can be "
        f"filtered on (filterable fields: {known}).")
    for unknown in ("password='x'", "roles.nope='x'", "roles='x'", "school.name='x'"):
        response = api.get("/users", filter=unknown)
        assert response.status_code == 400, unknown
        assert (response.get_json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]
                ["imsx_codeMinorFieldValue"] == "invalid_filter_field"), unknown


@pytest.mark.parametrize("expression, description", [
    ("givenName='Lisa' AND",
     "Invalid filter at character 21: expected a field name or '(' after AND, found the end of "
     "the filter."),
    ("givenName=='x'",
     "Invalid filter at character 11: expected a value in single quotes after givenName=, "
     "found '='."),
    ("status=active",
     "Invalid filter at character 8: expected a value in single quotes after status=, found "
     "'active'."),
    ("(givenName='Lisa'",
     "Invalid filter at character 18: expected ')' to close the '(' at character 1, found the "
     "end of the filter."),
    ("givenName='Lisa')", "Invalid filter at character 17: ')' has no matching '('."),
    ("givenName='Lisa", "Invalid filter at character 11: the quoted value starting here has no "
                        "closing quote."),
    ("givenName='a' givenName='b'",
     "Invalid filter at character 15: expected AND, OR or the end of the filter, found "
     "'givenName'."),
    ("dateLastModified>'yesterday'",
     "Invalid filter value for dateLastModified: 'yesterday' is not a date-time (expected ISO "
     "8601, e.g. 2026-01-01T10:00:00Z or 2026-01-01)."),
    ("enabledUser='yes'",
     "Invalid filter value for enabledUser: 'yes' is not a boolean (expected 'true' or "
     "'false')."),
    ("enabledUser>'true'",
     "Invalid filter at character 1: the operator '>' does not apply to enabledUser (boolean); "
     "use one of = !=."),
    ("roles.beginDate<'soon'",
     "Invalid filter value for roles.beginDate: 'soon' is not a date (expected YYYY-MM-DD)."),
])
def test_a_malformed_filter_says_where_it_broke(api, expression, description):
    response = api.get("/users", filter=expression)
    assert response.status_code == 400
    assert response.get_json() == error_body("invaliddata", description)


def test_an_empty_filter_is_no_filter(api):
    assert len(api.ids("/users", filter="")) == 7
