"""Names and Role Provisioning Services: the membership container, its paging and filters, its
bearer checks, and what the app's sharing policy lets it carry."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import update

from gateway.store.apps import AccessToken

from lti_support import ISSUER

MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"


def memberships_url(tool, context: str = "k2") -> str:
    return f"/lti/deployments/{tool.deployment_id}/contexts/{context}/memberships"


def get(client, url: str, token: str, **params):
    return client.get(url, query_string=params, headers={"Authorization": f"Bearer {token}",
                                                         "Accept": MEDIA_TYPE})


def next_link(response) -> str | None:
    match = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers.get("Link", ""))
    return match.group(1) if match else None


def test_membership_container(client, tool, service_token):
    response = get(client, memberships_url(tool), service_token(tool, NRPS))

    assert response.status_code == 200
    assert response.headers["Content-Type"] == MEDIA_TYPE
    assert "Link" not in response.headers
    assert response.get_json() == {
        "id": f"{ISSUER}/lti/deployments/{tool.deployment_id}/contexts/k2/memberships",
        "context": {"id": "k2", "label": "BIO1", "title": "Biology 1"},
        "members": [
            {"status": "Active", "user_id": "u2", "lis_person_sourcedid": "u2", "roles": [LEARNER],
             "given_name": "Bart", "family_name": "Simpson", "name": "Bart Simpson"},
            {"status": "Active", "user_id": "u3", "lis_person_sourcedid": "u3", "roles": [LEARNER],
             "given_name": "Milhouse", "family_name": "Van Houten", "name": "Milhouse Van Houten"},
            {"status": "Active", "user_id": "t-krab", "lis_person_sourcedid": "t-krab",
             "roles": [INSTRUCTOR], "given_name": "Edna", "family_name": "Krabappel",
             "name": "Edna Krabappel", "email": "edna@example.edu"},
        ]}


def test_role_filter_by_simple_name_or_uri(client, tool, service_token):
    token = service_token(tool, NRPS)
    for role in ("Learner", LEARNER):
        members = get(client, memberships_url(tool), token, role=role).get_json()["members"]
        assert [m["user_id"] for m in members] == ["u2", "u3"]
    members = get(client, memberships_url(tool), token, role="Instructor").get_json()["members"]
    assert [m["user_id"] for m in members] == ["t-krab"]
    response = get(client, memberships_url(tool), token, role="Janitor")
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_request",
                                   "error_description": "Unknown role 'Janitor'."}


def test_paging_with_link_headers(client, tool, service_token):
    token = service_token(tool, NRPS)
    response = get(client, memberships_url(tool), token, limit="2", role="Learner")
    assert [m["user_id"] for m in response.get_json()["members"]] == ["u2", "u3"]
    assert next_link(response) is None

    seen = []
    url = memberships_url(tool)
    response = get(client, url, token, limit="1")
    while True:
        seen += [m["user_id"] for m in response.get_json()["members"]]
        link = next_link(response)
        if link is None:
            break
        assert link.startswith(ISSUER + "/lti/deployments/")
        response = client.get(link.removeprefix(ISSUER), headers={"Authorization": f"Bearer {token}"})
    assert seen == ["u2", "u3", "t-krab"]
    assert get(client, url, token, limit="0").status_code == 400
    assert get(client, url, token, limit="x").status_code == 400


def test_bearer_token_checks(client, tool, make_tool, service_token, database):
    url = memberships_url(tool)
    response = client.get(url)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="lti"'
    response = get(client, url, "not-a-token")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="lti", error="invalid_token"'
    score_only = service_token(tool, "https://purl.imsglobal.org/spec/lti-ags/scope/score")
    response = get(client, url, score_only)
    assert response.status_code == 403
    assert response.get_json()["error"] == "insufficient_scope"
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="lti", error="insufficient_scope", scope="{NRPS}"')

    token = service_token(tool, NRPS)
    other = make_tool(slug="other")
    # Another tool's deployment, an unregistered deployment, a class that is not there.
    for bad in (memberships_url(other), "/lti/deployments/nope/contexts/k2/memberships",
                memberships_url(tool, "no-such-class")):
        response = get(client, bad, token)
        assert response.status_code == 404, bad
    with database.session_scope() as session:
        session.execute(update(AccessToken).values(
            expires_at=dt.datetime(2000, 1, 1)))
    response = get(client, url, token)
    assert response.status_code == 401
    assert response.get_json()["error_description"] == "The access token has expired."


def test_members_obey_the_apps_sharing_policy(client, tool, service_token, policy):
    response = get(client, memberships_url(tool), service_token(tool, NRPS))

    assert response.get_json()["members"] == [
        {"status": "Active", "user_id": "p-u2", "lis_person_sourcedid": "p-u2", "roles": [LEARNER],
         "given_name": "Bart", "family_name": "S.", "name": "Bart S."},
        {"status": "Active", "user_id": "p-t-krab", "lis_person_sourcedid": "p-t-krab",
         "roles": [INSTRUCTOR], "given_name": "Edna", "family_name": "K.", "name": "Edna K."},
    ]
    [(channel, endpoint, entity, records, stored)] = policy.disclosures
    assert (channel, endpoint, entity, stored) == ("lti", "nrps", "user", ["u2", "t-krab"])
    assert [r["sourcedId"] for r in records] == ["p-u2", "p-t-krab"]
