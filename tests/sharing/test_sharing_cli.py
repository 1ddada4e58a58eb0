"""``gateway apps create --policy | policy | show | preview`` and ``gateway ledger student |
verify | prune``."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update

from gateway.cli import cli
from gateway.sharing.ledger import record_disclosure
from gateway.store.apps import App, AppClient
from gateway.store.models import utcnow
from gateway.store.sharing import LedgerEntry, SharingPolicy

from sharing_data import MINIMUM_POLICY

SCHOOL_1 = {"schools": ["s1"], "fields": {"user": ["*", "email"]}}


@pytest.fixture
def policy_file(tmp_path):
    """Write a policy document to a file; returns its path as a string."""
    counter = iter(range(100))

    def write(document) -> str:
        path = tmp_path / f"policy-{next(counter)}.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        return str(path)
    return write


@pytest.fixture
def create(runner, small, policy_file):
    """``gateway apps create`` on the small district with a policy; returns the app id."""
    def run(document=MINIMUM_POLICY) -> int:
        result = runner.invoke(cli, ["apps", "create", "--district", "d1", "--name", "Reading App",
                                     "--json", "--policy", policy_file(document)])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["app_id"]
    return run


def test_create_with_a_policy_stores_it_and_grants_its_scopes(create, database):
    app_id = create()
    with database.session_scope() as session:
        row = session.execute(select(SharingPolicy)).scalar_one()
        assert (row.app_id, row.document, row.revision) == (app_id, MINIMUM_POLICY, 1)
        assert (row.contract_start, row.contract_end) == (dt.date(2026, 8, 1), dt.date(2027, 7, 31))
        assert session.execute(select(AppClient.scope)).scalar_one() == \
            "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"


def test_create_with_an_invalid_policy_creates_nothing(runner, small, policy_file, database):
    result = runner.invoke(cli, ["apps", "create", "--district", "d1", "--name", "Reading App",
                                 "--policy", policy_file({"schools": []})])
    assert result.exit_code == 1
    assert result.output == ("Error: invalid sharing policy:\n"
                             "  - schools: [] should be non-empty\n")
    with database.session_scope() as session:
        assert session.execute(select(App)).first() is None


def test_create_refuses_scopes_that_disagree_with_the_policy(runner, small, policy_file):
    result = runner.invoke(cli, ["apps", "create", "--district", "d1", "--name", "Reading App",
                                 "--scope", "https://purl.imsglobal.org/spec/or/v1p2/scope/"
                                            "roster-core.readonly",
                                 "--policy", policy_file(MINIMUM_POLICY)])
    assert result.exit_code == 1
    assert "--scope and the policy's scopes disagree" in result.output


def test_preview_counts_what_is_gained_and_lost_and_changes_nothing(create, runner, policy_file,
                                                                    database):
    app_id = create()
    result = runner.invoke(cli, ["apps", "preview", str(app_id), policy_file(SCHOOL_1)])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "students:  4 -> 1 (+0 gained, -3 lost)\n"
        "teachers:  2 -> 1 (+0 gained, -1 lost)\n"
        "classes:   3 -> 1 (+0 gained, -2 lost)\n"
        "fields that would start leaving:\n"
        "  user.email (shared)\n"
        "fields that would change treatment:\n"
        "  user.sourcedId (pseudonymized -> shared)\n"
        "  user.familyName (masked:initial -> shared)\n"
        "contract: none\n")
    with database.session_scope() as session:
        assert session.execute(select(SharingPolicy.document)).scalar_one() == MINIMUM_POLICY


def test_preview_as_json(create, runner, policy_file):
    app_id = create()
    result = runner.invoke(cli, ["apps", "preview", str(app_id), policy_file(SCHOOL_1), "--json"])
    body = json.loads(result.stdout)
    assert body["students"] == {"before": 4, "after": 1, "gained": 0, "lost": 3}
    assert {"entity": "user", "field": "email", "before": "withheld", "after": "shared",
            "change": "starts"} in body["fields"]


def test_preview_from_no_policy_gains_everything(runner, register, policy_file):
    creds = register()
    result = runner.invoke(cli, ["apps", "preview", str(creds.app_id), policy_file({"schools": ["s2"]})])
    assert result.output.splitlines()[:3] == [
        "students:  0 -> 3 (+3 gained, -0 lost)",
        "teachers:  0 -> 1 (+1 gained, -0 lost)",
        "classes:   0 -> 2 (+2 gained, -0 lost)"]


def test_policy_replaces_and_reports(create, runner, policy_file, database):
    app_id = create()
    result = runner.invoke(cli, ["apps", "policy", str(app_id), policy_file(SCHOOL_1)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"policy of app {app_id} for district d1 set (revision 2)"
    assert "students:  4 -> 1 (+0 gained, -3 lost)" in result.output
    with database.session_scope() as session:
        row = session.execute(select(SharingPolicy)).scalar_one()
        assert (row.document, row.revision, row.contract_start) == (SCHOOL_1, 2, None)


@pytest.mark.parametrize("args, message", [
    (["99", "{file}"], "Error: no app with id or client_id '99'; see `gateway apps list`\n"),
    (["{app}", "{file}", "--district", "d9"], "Error: app {app} is not connected to district 'd9'\n"),
])
def test_policy_errors(create, runner, policy_file, args, message):
    app_id = create()
    path = policy_file(SCHOOL_1)
    result = runner.invoke(cli, ["apps", "policy", *(a.format(app=app_id, file=path) for a in args)])
    assert result.exit_code == 1
    assert result.output == message.format(app=app_id)


def test_show_prints_clients_contract_visibility_and_the_policy(create, runner):
    app_id = create()
    result = runner.invoke(cli, ["apps", "show", str(app_id)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"app {app_id}: Reading App (created ")
    assert lines[1] == "district d1:"
    assert lines[2].startswith("  client ") and lines[2].endswith("(active): roster.readonly")
    today = utcnow().date()
    state = ("in force" if dt.date(2026, 8, 1) <= today <= dt.date(2027, 7, 31) else
             "ended on 2027-07-31" if today > dt.date(2027, 7, 31) else "not started")
    assert lines[3].startswith(f"  contract: {state}")
    assert lines[4] == "  visible:  4 students, 2 teachers, 3 classes"
    assert lines[5].startswith("  policy (revision 1, ")
    assert json.loads("\n".join(lines[6:])) == MINIMUM_POLICY


def test_show_without_a_policy(runner, register):
    creds = register()
    result = runner.invoke(cli, ["apps", "show", str(creds.app_id), "--json"])
    body = json.loads(result.stdout)
    assert body["districts"][0]["policy"] is None
    assert body["districts"][0]["contract"] == "no policy: nothing is shared"
    assert body["districts"][0]["visible"] == {"students": 0, "teachers": 0, "classes": 0}


# -- gateway ledger ------------------------------------------------------------------------------

@pytest.fixture
def disclosures(database, create, small):
    """Two disclosures by the app: a page of students and one student again."""
    app_id = create()
    with database.session_scope() as session:
        for minute, users in ((0, ["u1", "u2"]), (5, ["u1"])):
            record_disclosure(session, app_id=app_id, district_id=small, channel="rest",
                              endpoint="/ims/oneroster/rostering/v1p2/students", entity="user",
                              fields=["familyName:initial", "givenName", "sourcedId:pseudonym"],
                              users=users, record_count=len(users),
                              now=dt.datetime(2026, 9, 1, 8, minute))
    return app_id


def test_ledger_student(runner, disclosures):
    result = runner.invoke(cli, ["ledger", "student", "u1"])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "2 disclosure(s) of u1's records, to 1 app(s):\n"
        f"  app {disclosures} (Reading App): 2 time(s), 2026-09-01T08:00:00Z to 2026-09-01T08:05:00Z\n"
        "    user: familyName:initial, givenName, sourcedId:pseudonym\n"
        "newest 2:\n"
        f"  #2 2026-09-01T08:05:00Z app {disclosures} rest /ims/oneroster/rostering/v1p2/students "
        "user: familyName:initial, givenName, sourcedId:pseudonym\n"
        f"  #1 2026-09-01T08:00:00Z app {disclosures} rest /ims/oneroster/rostering/v1p2/students "
        "user: familyName:initial, givenName, sourcedId:pseudonym\n")


def test_ledger_student_json_and_nobody(runner, disclosures):
    body = json.loads(runner.invoke(cli, ["ledger", "student", "u2", "--json"]).stdout)
    assert body["total"] == 1 and body["apps"][0]["disclosures"] == 1
    assert body["entries"][0]["at"] == "2026-09-01T08:00:00Z"
    result = runner.invoke(cli, ["ledger", "student", "u4", "--district", "d1"])
    assert result.output == "no disclosures of u4's records are recorded\n"
    result = runner.invoke(cli, ["ledger", "student", "u4", "--district", "d9"])
    assert result.exit_code == 1 and result.output == "Error: unknown district 'd9'\n"
    result = runner.invoke(cli, ["ledger", "student", "nobody", "--district", "d1"])
    assert result.exit_code == 1
    assert result.output == "Error: no person with sourcedId 'nobody' in district d1\n"


def test_a_policy_naming_what_the_district_lacks_is_refused_with_what_it_has(
        runner, small, policy_file, database):
    document = {"schools": ["s1", "school-9"], "grades": ["3", "09"],
                "fields": {"user": ["*"]}}
    result = runner.invoke(cli, ["apps", "create", "--district", "d1", "--name", "Typo App",
                                 "--policy", policy_file(document)])
    assert result.exit_code == 1
    assert result.output == (
        "Error: the policy names schools that district d1 does not have: school-9 (it has: s1, s2)\n"
        "the policy names grades that district d1 does not have: 3 (it has: 03, 09, 10)\n"
        "Fix the policy, or give --allow-unknown to set it anyway.\n")
    with database.session_scope() as session:
        assert session.execute(select(App)).first() is None  # nothing half-made

    allowed = runner.invoke(cli, ["apps", "create", "--district", "d1", "--name", "Typo App",
                                  "--policy", policy_file(document), "--allow-unknown", "--json"])
    assert allowed.exit_code == 0, allowed.output
    assert ("Warning: the policy names grades that district d1 does not have: 3 (it has: 03, "
            "09, 10)") in allowed.stderr
    app_id = json.loads(allowed.stdout)["app_id"]

    classes = runner.invoke(cli, ["apps", "policy", str(app_id),
                                  policy_file({"schools": ["*"], "classes": ["k1", "k-nope"]})])
    assert classes.exit_code == 1
    assert classes.output.startswith(
        "Error: the policy names classes that district d1 does not have: k-nope (it has: k1, k2, k3")


def test_setting_a_policy_on_a_revoked_app_warns(runner, create, policy_file):
    app_id = create()
    assert runner.invoke(cli, ["apps", "revoke", str(app_id)]).exit_code == 0
    result = runner.invoke(cli, ["apps", "policy", str(app_id), policy_file(SCHOOL_1)])
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"Warning: app {app_id} is revoked in district d1: the policy is "
                             "stored, but the app cannot get tokens until it is connected again\n")


def test_ledger_verify_and_tampering(runner, disclosures, database):
    result = runner.invoke(cli, ["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("district d1: 2 entries, chain intact; head 2 ")
    with database.session_scope() as session:
        session.execute(update(LedgerEntry).where(LedgerEntry.seq == 1).values(
            fields=["givenName"]))
    result = runner.invoke(cli, ["ledger", "verify"])
    assert result.exit_code == 1
    assert result.output == ("district d1: 1 problem(s) in 2 entries:\n"
                             "  entry 1 was edited: its content does not match its hash\n")
    body = json.loads(runner.invoke(cli, ["ledger", "verify", "--json"]).stdout)
    assert body[0]["ok"] is False and body[0]["problems"][0]["seq"] == 1


def test_ledger_prune_needs_a_retention_and_keeps_verify_green(runner, disclosures, app):
    result = runner.invoke(cli, ["ledger", "prune"])
    assert result.exit_code == 1
    assert "no retention period: set GATEWAY_LEDGER_RETENTION_DAYS" in result.output
    app.config["LEDGER_RETENTION_DAYS"] = 0
    result = runner.invoke(cli, ["ledger", "prune"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("district d1: removed 2 entries older than ")
    assert result.output.rstrip().endswith("(checkpoint at entry 2)")
    result = runner.invoke(cli, ["ledger", "verify"])
    assert result.exit_code == 0
    assert result.output.startswith("district d1: 0 entries since checkpoint 2, chain intact")
    result = runner.invoke(cli, ["ledger", "prune", "--older-than", "30"])
    assert result.output.startswith("district d1: nothing older than ")


def test_every_apps_command_takes_the_app_id_or_its_client_id(runner, small, policy_file, database):
    created = runner.invoke(cli, ["apps", "create", "--district", "d1", "--name", "Reading App",
                                  "--json", "--policy", policy_file(MINIMUM_POLICY)])
    ids = json.loads(created.stdout)
    by_id = runner.invoke(cli, ["apps", "show", str(ids["app_id"]), "--json"])
    by_client = runner.invoke(cli, ["apps", "show", ids["client_id"], "--json"])
    assert by_client.exit_code == 0, by_client.output
    assert by_client.output == by_id.output
    assert runner.invoke(cli, ["apps", "preview", ids["client_id"],
                               policy_file(SCHOOL_1)]).exit_code == 0
    result = runner.invoke(cli, ["apps", "policy", ids["client_id"], policy_file(SCHOOL_1)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"policy of app {ids['app_id']} for district d1 set (revision 2)")
