"""The LTI channel under a restrictive sharing policy, enforced through
:func:`gateway.http.context.request_visibility` as in production.

A policy scoped to one school, sharing names only, masking family names and pseudonymizing user
ids: launches, NRPS and AGS all see the same pseudonyms, withhold what the policy withholds,
refuse what is out of scope, and every launch and roster read lands in the disclosure ledger.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.sharing import visibility_for
from gateway.sharing.service import set_policy
from gateway.store.models import utcnow
from gateway.store.sharing import LedgerEntry

from lti_support import portal_csrf

POLICY = {"schools": ["s2"], "fields": {"user": ["givenName", "familyName"], "demographics": []},
          "mask": {"user.familyName": "initial"}, "pseudonymize": ["user.sourcedId"]}
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


@pytest.fixture
def real_policy(database, app_id):
    """The app's policy for d1 is :data:`POLICY` (replacing the share-everything one)."""
    with database.session_scope() as session:
        set_policy(session, app_id=app_id, district_id=1, document=POLICY, now=utcnow())


def pseudonym(database, app_id: int, user: str) -> str:
    """The id the app knows ``user`` by (what the REST service would show it)."""
    with database.session_scope() as session:
        visibility = visibility_for(session, app_id=app_id, district_id=1, secret_key="test-secret-key")
        return visibility.present("user", {"sourcedId": user})["sourcedId"]


def ledger(database) -> list[tuple[str, str, str, int]]:
    with database.session_scope() as session:
        return [(e.channel, e.endpoint, e.entity, e.record_count) for e in
                session.execute(select(LedgerEntry).order_by(LedgerEntry.seq)).scalars()]


def test_launch_nrps_and_ags_under_a_real_policy(app, client, tool, place, launch, real_policy,
                                                 service_token, database, app_id):
    link_id = place(tool.client_id, "k2", title="Cells")
    bart = pseudonym(database, app_id, "u2")
    assert bart != "u2"

    claims = launch("bart", link_id=link_id)
    assert claims["sub"] == bart
    assert claims["https://purl.imsglobal.org/spec/lti/claim/lis"]["person_sourcedid"] == bart
    assert (claims["given_name"], claims["family_name"]) == ("Bart", "S.")
    assert "email" not in claims
    assert ledger(database) == [("lti", "launch", "user", 1)]

    token = service_token(tool)
    base = f"/lti/deployments/{tool.deployment_id}/contexts/k2"
    members = client.get(base + "/memberships", headers={"Authorization": f"Bearer {token}"}
                         ).get_json()["members"]
    assert [m["user_id"] for m in members] == [bart, pseudonym(database, app_id, "u3"),
                                              pseudonym(database, app_id, "t-krab")]
    assert all("email" not in m and m["family_name"].endswith(".") for m in members)
    assert ledger(database)[-1] == ("lti", "nrps", "user", 3)

    # A class of a school outside the policy does not exist for the app.
    assert client.get(f"/lti/deployments/{tool.deployment_id}/contexts/k1/memberships",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 404
    # Scores name users by the ids the app knows.
    headers = {"Authorization": f"Bearer {token}",
               "Content-Type": "application/vnd.ims.lis.v2.lineitem+json"}
    item = client.post(base + "/lineitems", headers=headers,
                       json={"label": "Quiz", "scoreMaximum": 10}).get_json()
    score = {"scoreGiven": 5, "scoreMaximum": 10, "activityProgress": "Completed",
             "gradingProgress": "FullyGraded", "timestamp": "2026-11-28T10:00:00Z"}
    scores_url = item["id"].removeprefix("http://gateway.test") + "/scores"
    headers["Content-Type"] = "application/vnd.ims.lis.v1.score+json"
    assert client.post(scores_url, headers=headers, json={**score, "userId": "u2"}).status_code == 400
    assert client.post(scores_url, headers=headers, json={**score, "userId": bart}).status_code == 204


def test_out_of_scope_people_cannot_launch(client, tool, place, sign_in, real_policy):
    link_id = place(tool.client_id, "k1")
    sign_in("lisa")
    assert "Fractions" not in client.get("/portal").get_data(as_text=True)
    response = client.post(f"/portal/launch/{link_id}", data={"csrf_token": portal_csrf(client)})
    assert response.status_code == 403
