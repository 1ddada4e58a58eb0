"""The floor under the rostering benchmark's /users page: the gateway's own app (its request
session, its bearer-token check, its disclosure ledger) with one extra route that does only what
every /users page must do besides reading and serializing the roster: check the token, record the
disclosure of the page's students in the hash-chained ledger, and send the page as fixed bytes
(the gateway's first /users page, from $BARE_PAGE_FILE).

No implementation of the service can be faster than this floor without giving up a per-request
token check or a durable disclosure record; its ratio to the bare endpoint says how much of the
"within 2x of bare" budget those two alone use.
"""
import os

import orjson
from flask import Response

from gateway import create_app
from gateway.http.auth import authorize_request
from gateway.http.context import request_visibility
from gateway.oneroster.service import CHANNEL
from gateway.oneroster.vocabulary import SCOPE_ROSTER, SCOPE_ROSTER_CORE

app = create_app()
with open(os.environ["BARE_PAGE_FILE"], "rb") as handle:
    PAGE = handle.read()
RECORDS = orjson.loads(PAGE)["users"]
# The stored sourcedIds of the page's people (the share-everything app sees them unchanged).
USERS = [user["sourcedId"] for user in RECORDS]
# The fields the page sends: a rendered page reports these, not its records (service._send).
FIELDS = sorted({name for user in RECORDS for name in user})


SCOPES = (SCOPE_ROSTER_CORE, SCOPE_ROSTER)


@app.get("/floor")
def floor() -> Response:
    """Token check, disclosure record, fixed page."""
    grant = authorize_request(SCOPES)
    # As a rendered /users page reports its disclosure: the fields sent, the people's ids.
    request_visibility(grant.app_id, grant.district_id, grant.policy_version).disclosed_fields(
        CHANNEL, "getAllUsers", "user", FIELDS, len(USERS), USERS)
    return Response(PAGE, mimetype="application/json")


@app.get("/floor/token")
def token_only() -> Response:
    """Token check (and the app's policy), fixed page: the floor without the ledger."""
    grant = authorize_request(SCOPES)
    request_visibility(grant.app_id, grant.district_id, grant.policy_version)
    return Response(PAGE, mimetype="application/json")
