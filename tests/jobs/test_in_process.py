"""Without Redis (the embedded default) jobs run in the command that starts them, through the
same job code a worker runs; and the import job's retry guard, which a worker relies on."""
from __future__ import annotations

from sqlalchemy import func, select

from gateway.cli import cli
from gateway.jobs import JobContext, run_job
from gateway.jobs.kinds import import_params
from gateway.store.models import Enrollment, ImportRun, User

from bundles import small_district, write_bundle

IMPORT_OPTIONS = {"dry_run": False, "force": False, "district": None, "district_name": None,
                  "strict": False, "format": None}


def test_import_runs_in_the_command_and_there_is_no_queue(runner, database, tmp_path):
    path = write_bundle(tmp_path / "bundle", small_district())
    result = runner.invoke(cli, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "import applied" in result.output and "job" not in result.output
    with database.session_scope() as session:
        assert session.execute(select(ImportRun.outcome, ImportRun.source)).all() == [
            ("applied", str(path))]
        assert session.execute(select(func.count()).select_from(User)).scalar_one() == 7

    listed = runner.invoke(cli, ["jobs"])
    assert listed.exit_code == 0
    assert listed.output.startswith("no job queue: GATEWAY_REDIS_URL is empty")
    assert runner.invoke(cli, ["jobs", "--json"]).output.strip() == "[]"
    worker = runner.invoke(cli, ["worker"])
    assert worker.exit_code == 1
    assert "GATEWAY_REDIS_URL is empty: there is no queue to work" in worker.output


def test_a_refused_import_keeps_its_exit_status_and_report(runner, database, tmp_path):
    files = small_district()
    files["users"][0]["enabledUser"] = "maybe"
    result = runner.invoke(cli, ["import", str(write_bundle(tmp_path / "bad", files))])
    assert result.exit_code == 1
    assert "1 problem(s); the bundle was rejected and nothing was written" in result.output
    missing = runner.invoke(cli, ["import", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1
    assert f"Error: {tmp_path / 'nowhere'}" in missing.output
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(User)).scalar_one() == 0


def test_a_retry_of_an_applied_import_reports_that_run_and_imports_nothing(app, database,
                                                                           tmp_path):
    """A work horse killed after its import committed, before the queue heard of it, is retried:
    the retry finds the run noted by the first attempt applied and does not import again."""
    path = write_bundle(tmp_path / "bundle", small_district())
    params = import_params(str(path), source="nightly", options=IMPORT_OPTIONS,
                           settings=app.config, spooled=False)
    first = JobContext(database, app.config, app.instance_path)
    result = run_job("import", params, first)
    assert result["report"]["outcome"] == "applied" and result["error"] is None
    assert first.notes == {"import_runs": [result["run_id"]]}

    # The bundle changes meanwhile (as if the spool held another): the retry must not read it.
    files = small_district()
    files["users"][0]["givenName"] = "Changed"
    write_bundle(path, files)
    retry = JobContext(database, app.config, app.instance_path, notes=dict(first.notes))
    again = run_job("import", params, retry)
    assert again["run_id"] == result["run_id"]
    assert again["note"] == (f"applied by an earlier attempt of this job (import run "
                             f"#{result['run_id']}); not applied again")
    assert again["report"]["files"] == result["report"]["files"]
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(ImportRun)).scalar_one() == 1
        assert "Changed" not in session.execute(select(User.given_name)).scalars().all()


def test_a_delta_applied_twice_changes_nothing_the_second_time(app, database, tmp_path):
    """Why retrying a delta would be harmless even without the guard above."""
    first = run_job("import", import_params(str(write_bundle(tmp_path / "bulk", small_district())),
                                            source="bulk", options=IMPORT_OPTIONS,
                                            settings=app.config, spooled=False),
                    JobContext(database, app.config, app.instance_path))
    assert first["report"]["outcome"] == "applied"
    delta = {"enrollments": [
        {"sourcedId": "e3", "status": "tobedeleted", "dateLastModified": "2026-12-01T10:00:00Z",
         "classSourcedId": "k2", "schoolSourcedId": "s2", "userSourcedId": "u2", "role": "student"},
        {"sourcedId": "e8", "status": "active", "dateLastModified": "2026-12-01T10:00:00Z",
         "classSourcedId": "k3", "schoolSourcedId": "s2", "userSourcedId": "u3", "role": "student"}]}
    path = write_bundle(tmp_path / "delta", delta, modes={"enrollments": "delta"})
    params = import_params(str(path), source="delta", settings=app.config, spooled=False,
                           options={**IMPORT_OPTIONS, "district": "d1"})
    counts = []
    for _ in range(2):
        # Fresh contexts: nothing noted, as if the guard did not exist.
        result = run_job("import", params, JobContext(database, app.config, app.instance_path))
        assert result["report"]["outcome"] == "applied"
        counts.append(result["report"]["files"]["enrollments"])
        with database.session_scope() as session:
            stored = session.execute(select(Enrollment.sourced_id, Enrollment.status,
                                            Enrollment.date_last_modified)
                                     .order_by(Enrollment.sourced_id)).all()
        if len(counts) == 1:
            after_first = stored
    assert counts[0] == {"mode": "delta", "added": 1, "changed": 0, "unchanged": 0, "deleted": 1,
                         "rejected": 0}
    assert counts[1] == {"mode": "delta", "added": 0, "changed": 0, "unchanged": 2, "deleted": 0,
                         "rejected": 0}
    assert stored == after_first


def test_a_scope_rebuild_job_rebuilds_the_restricting_policies_of_its_district(app, database,
                                                                                tmp_path):
    from gateway.oauth import service
    from gateway.sharing.service import set_policy
    from gateway.store.models import utcnow
    from gateway.store.sharing import ScopeMember, ScopeSnapshot

    path = write_bundle(tmp_path / "bundle", small_district())
    context = JobContext(database, app.config, app.instance_path)
    run_job("import", import_params(str(path), source="b", options=IMPORT_OPTIONS,
                                    settings=app.config, spooled=False), context)
    with database.session_scope(write=True) as session:
        for name, document in (("School one", {"schools": ["s1"], "fields": {"user": ["*"]}}),
                               ("Everything", {"schools": ["*"], "allUsers": True,
                                               "fields": {"user": ["*"]}})):
            created = service.register_app(session, name=name, district_sourced_id="d1",
                                           scopes=None, now=utcnow())
            set_policy(session, app_id=created.app_id, district_id=1, document=document,
                       now=utcnow())
    # Scopes are current: nothing to build.
    assert run_job("snapshots", {"district": "d1"}, context) == {"district": "d1",
                                                                  "snapshots_refreshed": 0}
    # Lost (as in a store upgraded from before scopes were stored): the restricting policy's
    # scope is built again; the whole-district one needs none.
    with database.session_scope(write=True) as session:
        session.execute(ScopeMember.__table__.delete())
        session.execute(ScopeSnapshot.__table__.delete())
    assert run_job("snapshots", {"district": "d1"}, context) == {"district": "d1",
                                                                  "snapshots_refreshed": 1}
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(ScopeSnapshot)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(ScopeMember)).scalar_one() > 0


def test_rebuild_scopes_runs_the_job_in_the_command_and_refuses_an_unknown_district(
        app, runner, database, tmp_path):
    from gateway.oauth import service
    from gateway.sharing.service import set_policy
    from gateway.store.models import utcnow
    from gateway.store.sharing import ScopeMember, ScopeSnapshot

    assert runner.invoke(cli, ["import", str(write_bundle(tmp_path / "b", small_district()))]
                         ).exit_code == 0
    with database.session_scope(write=True) as session:
        created = service.register_app(session, name="School one", district_sourced_id="d1",
                                       scopes=None, now=utcnow())
        set_policy(session, app_id=created.app_id, district_id=1,
                   document={"schools": ["s1"], "fields": {"user": ["*"]}}, now=utcnow())
        session.execute(ScopeMember.__table__.delete())
        session.execute(ScopeSnapshot.__table__.delete())
    result = runner.invoke(cli, ["apps", "rebuild-scopes", "--district", "d1"])
    assert result.exit_code == 0, result.output
    assert result.output == "rebuilt 1 sharing scope(s) of d1\n"
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(ScopeMember)).scalar_one() > 0
    refused = runner.invoke(cli, ["apps", "rebuild-scopes", "--district", "nowhere"])
    assert refused.exit_code != 0 and "no district 'nowhere' in the store" in refused.output
