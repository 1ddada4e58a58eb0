"""The admin console (``/admin``): district staff sign in and manage their district's apps, sharing
policies, people's passwords and other admins, and read the dashboard, the ledger and the audit
log. Plain server-rendered pages; every form carries the CSRF token (:mod:`gateway.http.forms`).

Views stay thin: each checks the admin's role, calls the service the CLI calls (or one of
:mod:`gateway.admin`), records what was done in the audit log and renders a page.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io

from flask import (Blueprint, Response, current_app, g, redirect, render_template, request,
                   session, url_for)
from werkzeug.exceptions import RequestEntityTooLarge

from gateway.admin import district as views
from gateway.admin import imports, tools
from gateway.admin.accounts import (ROLES, Admin, AdminSignInFailed, accept_invite,
                                    audit_log, authenticate_admin, disable_admin,
                                    end_admin_sessions, invite_admin, invited_account,
                                    list_admins, record_action, session_admin,
                                    start_admin_session)
from gateway.admin.policy_form import (ENTITY_LABELS, SCOPE_LABELS, document_from_form,
                                       field_rows, row_choices)
from gateway.database import get_database, request_session, write_session
from gateway.errors import UsageError
from gateway.http.context import lti_settings
from gateway.http.forms import check_csrf, session_lifetime, signed_in_cookie
from gateway.http.inputs import cap_form_size, form_too_large_description, refuse_nul
from gateway.http.throttling import admin_login_keys, throttle_store
from gateway.jobs.spool import spool_folder
from gateway.lti.platform import icons
from gateway.lti.platform.errors import BadRequest, FormTooLarge, PageError
from gateway.oauth import service as oauth
from gateway.oneroster.csv.limits import ImportLimits
from gateway.sharing import ledger
from gateway.sharing.record_pdf import disclosure_record_pdf
from gateway.sharing import service as sharing
from gateway.sharing.policy import PolicyError, parse_policy
from gateway.sharing.snapshots import settle_snapshots
from gateway.store.models import utcnow
from gateway.throttle import Throttled, check_attempt, record_failure, record_success

blueprint = Blueprint("admin", __name__, url_prefix="/admin")
SESSION_ADMIN = "admin_session"
OPEN_ENDPOINTS = {"admin.login_form", "admin.login", "admin.invitation", "admin.accept"}

# An icon's own cap (icons.MAX_ICON_BYTES) is checked on the image; the body may be larger.
cap_form_size(blueprint, uploads={"admin.upload_import": "UPLOAD_MAX_BYTES",
                                  "admin.set_tool_icon": "UPLOAD_MAX_BYTES"})
IMPORT_JOBS = "gateway.import_jobs"


@blueprint.record_once
def _import_jobs(state) -> None:
    """What runs the console's import jobs: the job queue when there is one, else a process."""
    config = state.app.config
    runner = (imports.QueuedImportJobs(config["REDIS_URL"], config["REDIS_KEY_PREFIX"],
                                       int(config["JOB_TIMEOUT_SECONDS"]))
              if config.get("REDIS_URL") else imports.ProcessImportJobs())
    state.app.extensions.setdefault(IMPORT_JOBS, runner)


def _uploads_root() -> str:
    """Where the console keeps uploads and their jobs: the spool when a queue's workers (maybe
    on other hosts) run them, the instance folder otherwise."""
    if current_app.config.get("REDIS_URL"):
        return str(spool_folder(current_app.config, current_app.instance_path))
    return current_app.instance_path
refuse_nul(blueprint, BadRequest)


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html",
                    headers={"Cache-Control": "no-store"})


def _page(template: str, status: int = 200, **values) -> Response:
    return _html(render_template(f"admin/{template}", admin=g.get("admin"), **values), status)


def _admin() -> Admin:
    return g.admin


@blueprint.before_request
def _require_admin():
    """Every page but sign-in and invitations needs a signed-in admin."""
    token = session.get(SESSION_ADMIN)
    g.admin = (session_admin(request_session(), token, utcnow())
               if isinstance(token, str) else None)
    if g.admin is None and request.endpoint not in OPEN_ENDPOINTS:
        if request.method == "POST":
            check_csrf()
        return redirect(url_for("admin.login_form"))
    return None


def _acting(permission: str) -> Admin:
    """The admin posting this form (its CSRF token checked), if their role grants
    ``permission``."""
    check_csrf()
    admin = _admin()
    admin.require(permission)
    return admin


def _record(action: str, target: str = "", detail: dict | None = None) -> None:
    record_action(request_session(), _admin(), action, target, detail, now=utcnow())


# ------------------------------------------------------------------------------ signing in

@blueprint.get("/login")
def login_form() -> Response:
    """The console's sign-in form."""
    if g.admin is not None:
        return redirect(url_for("admin.dashboard"))
    return _page("login.html", email="", error=None)


@blueprint.post("/login")
def login() -> Response:
    """Sign in with email and password; failures are throttled per account and address."""
    check_csrf()
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    keys = admin_login_keys(email)
    try:
        check_attempt(throttle_store(), keys, utcnow())
    except Throttled as throttled:
        response = _page("login.html", 429, email=email, error=(
            "Too many failed sign-in attempts for this account or from this network. "
            f"Try again in {throttled.retry_after} seconds."))
        response.headers["Retry-After"] = str(throttled.retry_after)
        return response
    try:
        admin = authenticate_admin(request_session(), email, password)
    except AdminSignInFailed:
        record_failure(throttle_store(writing=True), keys, utcnow())
        return _page("login.html", email=email, error="Unknown email address or wrong password.")
    store = throttle_store(writing=True)
    record_success(store, keys[:1])
    token = start_admin_session(store.session, admin, utcnow(), session_lifetime())
    record_action(store.session, admin, "admin.sign_in", admin.email, now=utcnow())
    signed_in_cookie(SESSION_ADMIN, token)
    return redirect(url_for("admin.dashboard"), code=303)


@blueprint.post("/logout")
def logout() -> Response:
    """Sign out: every console session of this admin ends."""
    check_csrf()
    end_admin_sessions(write_session(), _admin().id)
    session.clear()
    return redirect(url_for("admin.login_form"), code=303)


# The invitation's token rides in the query string, never in the path: access logs keep paths
# and drop query strings, and whoever holds the token can choose the account's password.

def _invitation_page(token: str, error: str | None = None, status: int = 200) -> Response:
    account = invited_account(request_session(), token, utcnow()) if token else None
    if account is None:
        return _page("message.html", 404, title="Invitation not valid",
                     message="This invitation has expired or was already used. Ask your "
                             "district admin for a new one.")
    return _page("invite.html", status, email=account.email, role=ROLES[account.role],
                 token=token, error=error)


@blueprint.get("/invite")
def invitation() -> Response:
    """The page where an invited person chooses their password."""
    return _invitation_page(request.args.get("token", ""))


@blueprint.post("/invite")
def accept() -> Response:
    """Set the invited account's password, then sign in."""
    check_csrf()
    token = request.form.get("token", "")
    password = request.form.get("password", "")
    if password != request.form.get("confirm", ""):
        return _invitation_page(token, "The two passwords differ.", 400)
    try:
        accept_invite(write_session(), token, password, utcnow())
    except UsageError as error:
        return _invitation_page(token, str(error), 400)
    return redirect(url_for("admin.login_form"), code=303)


# ------------------------------------------------------------------------------- dashboard

@blueprint.get("/")
def dashboard() -> Response:
    """The district at a glance."""
    return _page("dashboard.html", board=views.dashboard(request_session(),
                                                         _admin().district_id, utcnow().date()))


@blueprint.get("/audit")
def audit() -> Response:
    """The district's audit log."""
    return _page("audit.html", actions=audit_log(request_session(), _admin().district_id))


# ------------------------------------------------------------------------------------ apps

@blueprint.get("/apps")
def apps() -> Response:
    """The district's apps, and the form to connect one."""
    return _page("apps.html", apps=views.district_apps(request_session(), _admin().district_id),
                 scopes=SCOPE_LABELS)


def _credentials_page(credentials, app_name: str, what: str) -> Response:
    return _page("credentials.html", credentials=credentials, app_name=app_name, what=what)


@blueprint.post("/apps")
def connect_app() -> Response:
    """Connect an app: its credentials are shown on the answer, once."""
    admin = _acting("manage_apps")
    name = request.form.get("name", "")
    scopes = request.form.getlist("scopes") or None
    credentials = oauth.register_app(write_session(), name=name,
                                     district_sourced_id=admin.district_sourced_id,
                                     scopes=scopes, now=utcnow())
    _record("app.connect", name.strip(), {"app_id": credentials.app_id,
                                          "client_id": credentials.client_id})
    return _credentials_page(credentials, name.strip(), "connected")


def _app(app_id: int):
    return views.app_in_district(request_session(), app_id, _admin().district_id)


def _policy_page(app, *, policy=None, document=None, preview=None, problems=(), status=200,
                 saved=None) -> Response:
    session = request_session()
    admin = _admin()
    current = sharing.load_policy(session, app.id, admin.district_id)
    shown = policy if policy is not None else current
    client = views.live_client(session, app.id, admin.district_id)
    return _page("app.html", status, app=app, client=client,
                 rows=row_choices(shown, client.scope.split() if client else ()),
                 fields=field_rows(shown), entity_labels=ENTITY_LABELS, scopes=SCOPE_LABELS,
                 pickers=views.district_pickers(session, admin), preview=preview,
                 problems=problems, has_policy=current is not None, saved=saved,
                 visible=sharing.visible_counts(session, current, admin.district_id))


@blueprint.get("/apps/<int:app_id>")
def app_detail(app_id: int) -> Response:
    """An app: its credentials' state and its sharing policy as a form."""
    return _policy_page(_app(app_id), saved=request.args.get("saved"))


@blueprint.post("/apps/<int:app_id>/policy")
def app_policy(app_id: int) -> Response:
    """Preview (``action=preview``) or save (``action=save``) the policy the form describes.
    Saving shows the same preview it applied."""
    check_csrf()
    admin = _admin()
    saving = request.form.get("action") == "save"
    if saving:
        admin.require("manage_apps")
    app = _app(app_id)
    form = request.form.to_dict(flat=False)
    try:
        document = document_from_form(form)
        views.check_policy_schools(admin, document)
    except PolicyError as error:
        return _policy_page(app, problems=error.problems, status=400)
    policy = parse_policy(document)
    session = request_session()
    unknown = sharing.unknown_policy_names(session, policy, admin.district_id)
    if unknown:
        return _policy_page(app, policy=policy, status=400, problems=sharing.describe_unknown_names(
            unknown, admin.district_sourced_id).splitlines())
    preview = sharing.preview_policy(session, app_id=app.id, district_id=admin.district_id,
                                     document=document)
    if not saving:
        return _policy_page(app, policy=policy, preview=preview)
    views.check_app_scope(session, admin, app.id)
    update = sharing.set_policy(write_session(), app_id=app.id, district_id=admin.district_id,
                                document=document, now=utcnow())
    _record("app.policy", app.name, {"app_id": app.id, "revision": update.revision,
                                     "policy": document})
    response = _policy_page(app, preview=preview, saved=str(update.revision))
    # After the request's commit (at teardown), as `gateway apps policy` does after its own.
    engine = get_database().engine
    response.call_on_close(lambda: settle_snapshots(engine))
    return response


@blueprint.post("/apps/<int:app_id>/rotate")
def rotate(app_id: int) -> Response:
    """A new client secret for the app's live client, shown once."""
    admin = _acting("manage_apps")
    app = _app(app_id)
    views.check_app_scope(request_session(), admin, app.id)
    client = views.live_client(write_session(), app.id, admin.district_id)
    if client is None:
        raise UsageError("The app is revoked: connect it again instead.")
    credentials = oauth.rotate_secret(request_session(), client)
    _record("app.rotate_secret", app.name, {"app_id": app.id, "client_id": client.client_id})
    return _credentials_page(credentials, app.name, "given a new secret")


@blueprint.post("/apps/<int:app_id>/revoke")
def revoke(app_id: int) -> Response:
    """Revoke the app's clients in the district and their tokens."""
    admin = _acting("manage_apps")
    app = _app(app_id)
    views.check_app_scope(request_session(), admin, app.id)
    session = write_session()
    revoked = views.live_clients(session, app.id, admin.district_id)
    for client in revoked:
        oauth.revoke(session, client.client_id, now=utcnow())
    _record("app.revoke", app.name, {"app_id": app.id,
                                     "client_ids": [c.client_id for c in revoked]})
    return redirect(url_for("admin.apps"), code=303)


@blueprint.post("/apps/<int:app_id>/delete")
def delete(app_id: int) -> Response:
    """Delete the app, its tokens, tools and links; the ledger keeps what it was given."""
    check_csrf()
    admin = _admin()
    app = _app(app_id)
    if request.form.get("confirm") != "yes":
        raise UsageError("Tick the box that says you understand, to delete the app.")
    session = write_session()
    views.check_app_deletable(session, admin, app.id)
    name = oauth.delete_app(session, app.id)
    _record("app.delete", name, {"app_id": app_id})
    return redirect(url_for("admin.apps"), code=303)


# --------------------------------------------------------------------------------- imports

@blueprint.get("/imports")
def imports_page() -> Response:
    """Upload a bundle, and the district's import history."""
    return _page("imports.html", runs=views.import_history(request_session(),
                                                           _admin().district_id))


def _import_options(force: bool = False) -> dict:
    config = current_app.config
    return {"force": force, "mass_change_threshold": float(config["MASS_CHANGE_THRESHOLD"]),
            "max_reported_problems": int(config["IMPORT_MAX_REPORTED_ERRORS"]),
            "limits": dataclasses.asdict(ImportLimits.from_config(config))}


def _start(folder) -> Response:
    from redis.exceptions import RedisError

    try:
        current_app.extensions[IMPORT_JOBS].start(folder)
    except (RedisError, OSError) as error:
        raise UsageError(f"The job queue does not answer ({error}); nothing was started. "
                         "Try again in a moment.") from None
    return redirect(url_for("admin.import_job", job_id=folder.name), code=303)


@blueprint.post("/imports")
def upload_import() -> Response:
    """Save an uploaded bundle and start its dry run as a job."""
    admin = _acting("manage_imports")
    upload = request.files.get("bundle")
    if upload is None or not upload.filename:
        raise UsageError("Choose the bundle (a .zip) to upload.")
    folder = imports.new_job(_uploads_root(), kind=imports.DRY_RUN,
                             district=admin.district_sourced_id,
                             database_url=current_app.config["DATABASE_URL"],
                             options=_import_options(), upload=upload.stream)
    _record("import.upload", upload.filename, {"job": folder.name})
    return _start(folder)


def _job(job_id: str) -> imports.ImportJob:
    folder = imports.job_dir(_uploads_root(), job_id)
    job = imports.read_job(folder) if folder is not None else None
    if job is None or job.district != _admin().district_sourced_id:
        raise UsageError("No such import in this district.")
    return job


@blueprint.get("/imports/<job_id>")
def import_job(job_id: str) -> Response:
    """A job's progress (the page refreshes itself until it ends), then its report."""
    job = _job(job_id)
    report = job.report or {}
    return _page("import_job.html", job=job, report=report,
                 problems=views.problems_by_file(report.get("problems", [])),
                 applicable=views.applicable(job, _admin().district_sourced_id))


@blueprint.post("/imports/<job_id>/apply")
def apply_import(job_id: str) -> Response:
    """Apply a bundle whose dry run passed (``force``: past the mass-change hold), as a job."""
    admin = _acting("manage_imports")
    job = _job(job_id)
    _refuse_rejected(job)
    hold = views.applicable(job, admin.district_sourced_id)
    if hold is None:
        raise UsageError("Only a bundle of this district whose dry run passed can be applied.")
    force = hold == "hold"
    folder = imports.new_job(_uploads_root(), kind=imports.APPLY,
                             district=admin.district_sourced_id,
                             database_url=current_app.config["DATABASE_URL"],
                             options=_import_options(force=force), upload_of=job.upload)
    imports.mark_applied(imports.job_dir(_uploads_root(), job.id), folder.name)
    _record("import.apply", job.upload, {"job": folder.name, "past_mass_change_hold": force})
    return _start(folder)


def _refuse_rejected(job: imports.ImportJob) -> None:
    if job.rejected_at:
        raise UsageError(f"This upload was rejected by {job.rejected_by}: upload the bundle "
                         "again to import it.")


@blueprint.post("/imports/<job_id>/reject")
def reject_import(job_id: str) -> Response:
    """Reject a dry run held by the mass-change threshold: nothing is written, the upload can no
    longer be applied, and its bundle is deleted."""
    admin = _acting("manage_imports")
    job = _job(job_id)
    _refuse_rejected(job)
    if views.applicable(job, admin.district_sourced_id) != "hold":
        raise UsageError("Only a dry run held by the mass-change threshold can be rejected.")
    if job.applied_as:
        raise UsageError("This upload is already being applied; it can no longer be rejected.")
    imports.reject_job(imports.job_dir(_uploads_root(), job.id), admin.email, utcnow())
    _record("import.reject", job.upload, {"job": job.id})
    return redirect(url_for("admin.import_job", job_id=job.id), code=303)


# ----------------------------------------------------------------------------------- tools

def _tools_page(status: int = 200, **values) -> Response:
    session = request_session()
    admin = _admin()
    pickers = views.district_pickers(session, admin)
    return _page("tools.html", status, tools=tools.district_tools(session, admin),
                 apps=[a for a in views.district_apps(session, admin.district_id) if a.live],
                 classes=pickers.classes, schools=pickers.schools, **values)


@blueprint.get("/tools")
def tools_page() -> Response:
    """The LTI tools deployed in the district, their approval and placements."""
    return _tools_page()


@blueprint.post("/tools/registrations")
def start_registration() -> Response:
    """Start a dynamic registration: the link that opens the tool's registration window."""
    check_csrf()
    app_id = request.form.get("app", "")
    if not app_id.isdigit():
        raise UsageError("Choose the app the tool belongs to.")
    app = _app(int(app_id))
    link = tools.start_registration(write_session(), _admin(), app_id=app.id,
                                    tool_url=request.form.get("tool_url", ""),
                                    settings=lti_settings(), now=utcnow())
    _record("tool.registration_started", app.name, {"app_id": app.id})
    return _tools_page(registration_link=link)


@blueprint.post("/tools/<client_id>/approve")
def approve_tool(client_id: str) -> Response:
    """Approve a tool that registered itself."""
    check_csrf()
    tool = tools.approve(write_session(), _admin(), client_id, utcnow())
    _record("tool.approve", tool.name, {"client_id": client_id})
    return redirect(url_for("admin.tools_page"), code=303)


@blueprint.post("/tools/<client_id>/disable")
def disable_tool(client_id: str) -> Response:
    """Stop a tool launching (it waits for approval again)."""
    check_csrf()
    tool = tools.disable(write_session(), _admin(), client_id)
    _record("tool.disable", tool.name, {"client_id": client_id})
    return redirect(url_for("admin.tools_page"), code=303)


@blueprint.post("/tools/<client_id>/place")
def place_tool(client_id: str) -> Response:
    """Place a tool in a class, at a school or district-wide (``where``: class, school or
    district; a class when the form does not say)."""
    check_csrf()
    where = request.form.get("where", "class")
    if where not in ("class", "school", "district"):
        raise UsageError("Place the tool in a class, at a school or district-wide.")
    link = tools.place(write_session(), _admin(), client_id=client_id,
                       class_sourced_id=request.form.get("class", "") if where == "class" else None,
                       school_sourced_id=request.form.get("school", "") if where == "school" else None,
                       district_wide=where == "district",
                       audience="everyone" if where == "class" else request.form.get("audience", "everyone"),
                       title=request.form.get("title", "").strip(), now=utcnow())
    _record("tool.place", link.title, {"client_id": client_id, "class": link.class_sourced_id,
                                       "school": link.school_sourced_id,
                                       "placement": link.placement, "audience": link.audience,
                                       "link_id": link.link_id})
    return redirect(url_for("admin.tools_page"), code=303)


@blueprint.post("/tools/<client_id>/icon")
def set_tool_icon(client_id: str) -> Response:
    """Set (or clear) the icon on a tool's launchpad tiles: a URL or an uploaded image."""
    check_csrf()
    upload = request.files.get("image")
    image = upload.read(icons.MAX_ICON_BYTES + 1) if upload is not None and upload.filename else None
    url = request.form.get("icon_url", "").strip()
    if request.form.get("clear"):
        url, image = "", None
    elif not url and not image:
        raise UsageError("Give the icon's URL or choose an image.")
    tool = tools.set_icon(write_session(), _admin(), client_id, url=url, image=image)
    _record("tool.icon", tool.name, {"client_id": client_id, "url": url or None,
                                     "image": image is not None})
    return redirect(url_for("admin.tools_page"), code=303)


@blueprint.post("/links/<link_id>/remove")
def remove_link(link_id: str) -> Response:
    """Remove a tool's link from a class."""
    check_csrf()
    link = tools.remove_link(write_session(), _admin(), link_id)
    _record("tool.remove_link", link.title, {"class": link.class_sourced_id, "link_id": link_id})
    return redirect(url_for("admin.tools_page"), code=303)


# ---------------------------------------------------------------------------------- people

@blueprint.get("/people")
def people() -> Response:
    """Find people of the district (to reset a password)."""
    query = request.args.get("q", "")
    return _page("people.html", query=query,
                 people=views.find_people(request_session(), _admin(), query), done=None)


@blueprint.post("/people/<int:user_id>/password")
def reset_password(user_id: int) -> Response:
    """Set a person's portal password; their portal sessions end."""
    check_csrf()
    password = request.form.get("password", "")
    user = views.reset_person_password(write_session(), _admin(), user_id, password)
    _record("person.reset_password", user.username or user.sourced_id,
            {"sourcedId": user.sourced_id})
    query = request.form.get("q", "")
    return _page("people.html", query=query,
                 people=views.find_people(request_session(), _admin(), query),
                 done=f"Password set for {user.username}. Their portal sessions ended.")


# ---------------------------------------------------------------------------------- admins

@blueprint.get("/admins")
def admins() -> Response:
    """The district's staff accounts, and the form to invite one."""
    return _page("admins.html", accounts=list_admins(request_session(), _admin()), roles=ROLES,
                 schools=views.district_pickers(request_session(), _admin()).schools, link=None)


@blueprint.post("/admins")
def invite() -> Response:
    """Invite a staff member: the invitation link is shown once, to pass on."""
    check_csrf()
    admin = _admin()
    token = invite_admin(write_session(), admin, email=request.form.get("email", ""),
                         role=request.form.get("role", ""),
                         schools=request.form.getlist("schools"), now=utcnow())
    link = url_for("admin.invitation", token=token, _external=True)
    return _page("admins.html", accounts=list_admins(request_session(), admin), roles=ROLES,
                 schools=views.district_pickers(request_session(), admin).schools, link=link)


@blueprint.post("/admins/<int:account_id>/disable")
def disable(account_id: int) -> Response:
    """Disable a staff account; its sessions end."""
    check_csrf()
    disable_admin(write_session(), _admin(), account_id, utcnow())
    return redirect(url_for("admin.admins"), code=303)


# ---------------------------------------------------------------------------------- ledger

@blueprint.get("/ledger")
def ledger_page() -> Response:
    """A student's disclosure record: which apps received what, and when."""
    student = request.args.get("student", "").strip()
    record = None
    if student:
        record = ledger.student_disclosures(request_session(), _admin().district_id, student,
                                            limit=200)
    return _page("ledger.html", student=student, record=record, verification=None,
                 **_ledger_search())


def _day(name: str) -> dt.datetime | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d")
    except ValueError as error:
        raise UsageError(f"Give the date as YYYY-MM-DD: {text!r}.") from error


def _ledger_search() -> dict:
    """The search form's values and, when it was sent, one page of entries."""
    admin = _admin()
    apps = views.district_apps(request_session(), admin.district_id)
    form = {key: request.args.get(key, "").strip() for key in ("app", "from", "to")}
    found = None
    if request.args.get("search"):
        app_id = int(form["app"]) if form["app"].isdigit() else None
        since, until = _day("from"), _day("to")
        before = request.args.get("before", "")
        found = ledger.search_entries(
            request_session(), admin.district_id, app_id=app_id, since=since,
            # "to" is a whole day: up to the next midnight.
            until=until + dt.timedelta(days=1) if until else None,
            before=int(before) if before.isdigit() else None)
    return {"search_apps": apps, "search": form, "found": found}


@blueprint.get("/ledger/export.csv")
def ledger_export() -> Response:
    """A student's whole disclosure record as CSV, for a parent's request."""
    student = request.args.get("student", "").strip()
    if not student:
        raise UsageError("Name a student.")
    record = ledger.student_disclosures(request_session(), _admin().district_id, student,
                                        limit=None)
    _record("ledger.export", student, {"entries": record.total})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["disclosed_at", "app_id", "app", "channel", "endpoint", "entity", "fields"])
    for entry in record.entries:
        writer.writerow([entry.disclosed_at.isoformat(timespec="seconds") + "Z", entry.app_id,
                         entry.app_name or "", entry.channel, entry.endpoint, entry.entity,
                         " ".join(entry.fields)])
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="disclosures-{_safe(student)}.csv"',
        "Cache-Control": "no-store"})


@blueprint.get("/ledger/export.pdf")
def ledger_export_pdf() -> Response:
    """A student's whole disclosure record as PDF, for a parent's request."""
    student = request.args.get("student", "").strip()
    if not student:
        raise UsageError("Name a student.")
    admin = _admin()
    record = ledger.student_disclosures(request_session(), admin.district_id, student, limit=None)
    _record("ledger.export", student, {"entries": record.total, "format": "pdf"})
    body = disclosure_record_pdf(record, district_name=admin.district_name, now=utcnow())
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="disclosures-{_safe(student)}.pdf"',
        "Cache-Control": "no-store"})


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:100]


@blueprint.post("/ledger/verify")
def verify() -> Response:
    """Verify the district's hash chain."""
    admin = _acting("verify_ledger")
    verification = ledger.verify_ledger(request_session(), admin.district_id)
    _record("ledger.verify", admin.district_sourced_id, {"ok": verification.ok})
    return _page("ledger.html", student="", record=None, verification=verification,
                 **_ledger_search())


# ---------------------------------------------------------------------------------- errors

@blueprint.errorhandler(UsageError)
def _handle_usage_error(error: UsageError) -> Response:
    return _page("message.html", getattr(error, "status", 400), title="That did not work",
                 message=str(error))


@blueprint.errorhandler(PageError)
def _handle_page_error(error: PageError) -> Response:
    response = _page("message.html", error.status, title="Cannot continue",
                     message=error.description)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


@blueprint.errorhandler(RequestEntityTooLarge)
def _handle_too_large(_error: RequestEntityTooLarge) -> Response:
    return _handle_page_error(FormTooLarge(form_too_large_description()))
