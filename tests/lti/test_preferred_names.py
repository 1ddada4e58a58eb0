"""Preferred names (issue 13): the portal greets a student by the name they go by, and so do the
tools they launch. A policy's ``names`` chooses which names LTI claims and NRPS carry; a
preferred name leaves only when the policy shares it, and the ledger records the one sent."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from gateway.sharing.policy import share_everything_document
from gateway.sharing.service import set_policy
from gateway.store.models import User, utcnow
from gateway.store.sharing import LedgerEntry

NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


@pytest.fixture
def goes_by(database, district):
    """Bart Simpson (u2) goes by "Bartholomew J." in the SIS's preferred first name."""
    with database.session_scope() as session:
        session.execute(update(User).where(User.sourced_id == "u2").values(
            preferred_given_name="Bartholomew J."))


def with_policy(database, app_id: int, **document) -> None:
    with database.session_scope() as session:
        set_policy(session, app_id=app_id, district_id=1,
                   document={**share_everything_document(), **document}, now=utcnow())


def last_fields(database) -> list[str]:
    with database.session_scope() as session:
        return session.execute(select(LedgerEntry.fields).order_by(LedgerEntry.seq.desc())
                               ).scalars().first()


def test_launches_and_nrps_carry_the_preferred_name_by_default(client, tool, place, launch,
                                                               service_token, goes_by, database):
    claims = launch("bart", link_id=place(tool.client_id, "k2"))
    assert (claims["given_name"], claims["family_name"]) == ("Bartholomew J.", "Simpson")
    assert claims["name"] == "Bartholomew J. Simpson"
    # The ledger says the preferred name left, and the legal one did not.
    assert "preferredFirstName" in last_fields(database)
    assert "givenName" not in last_fields(database)

    token = service_token(tool)
    members = client.get(f"/lti/deployments/{tool.deployment_id}/contexts/k2/memberships",
                         headers={"Authorization": f"Bearer {token}"}).get_json()["members"]
    [bart] = [m for m in members if m["user_id"] == "u2"]
    assert (bart["given_name"], bart["name"]) == ("Bartholomew J.", "Bartholomew J. Simpson")


def test_a_policy_can_ask_for_legal_names(tool, place, launch, goes_by, database, app_id):
    with_policy(database, app_id, names="legal")
    claims = launch("bart", link_id=place(tool.client_id, "k2"))
    assert (claims["given_name"], claims["name"]) == ("Bart", "Bart Simpson")
    assert "preferredFirstName" not in last_fields(database)


def test_a_preferred_name_the_policy_withholds_never_leaves(tool, place, launch, goes_by,
                                                            database, app_id):
    with_policy(database, app_id, fields={"user": ["givenName", "familyName"]})
    claims = launch("bart", link_id=place(tool.client_id, "k2"))
    assert (claims["given_name"], claims["name"]) == ("Bart", "Bart Simpson")
    assert "Bartholomew" not in str(claims)


def test_without_a_preferred_name_the_legal_one_is_sent(tool, place, launch, database):
    claims = launch("bart", link_id=place(tool.client_id, "k2"))
    assert (claims["given_name"], claims["name"]) == ("Bart", "Bart Simpson")
