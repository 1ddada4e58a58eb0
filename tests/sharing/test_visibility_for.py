"""``visibility_for``: what the HTTP layer calls with an AccessGrant's app and district."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from gateway.sharing import (PolicyCache, PolicyVisibility, Unrestricted, Visibility,
                             visibility_for)
from gateway.sharing.service import set_policy
from gateway.store.models import User, utcnow
from gateway.store.sharing import LedgerEntry

from sharing_data import MINIMUM_POLICY, SECRET

NOW = dt.datetime(2026, 9, 1, 8, 0, 0)


def visible_users(session, vis: Visibility) -> list[str]:
    users = User.__table__
    query = select(users.c.sourced_id).order_by(users.c.sourced_id)
    predicate = vis.where("user", users)
    if predicate is not None:
        query = query.where(predicate)
    return list(session.execute(query).scalars())


def test_an_app_without_a_policy_sees_nothing(session, register, small):
    creds = register()
    vis = visibility_for(session, app_id=creds.app_id, district_id=small, secret_key=SECRET)
    assert isinstance(vis, PolicyVisibility) and vis.policy is None
    assert visible_users(session, vis) == []


def test_the_stored_policy_applies_and_the_ledger_writes_in_the_session(session, register, small):
    creds = register()
    set_policy(session, app_id=creds.app_id, district_id=small,
               document={**MINIMUM_POLICY, "schools": ["s1"]}, now=utcnow())
    vis = visibility_for(session, app_id=creds.app_id, district_id=small, secret_key=SECRET,
                         clock=lambda: NOW)
    assert visible_users(session, vis) == ["t-hoover", "u1"]
    sent = [vis.present("user", {"sourcedId": "u1", "familyName": "Simpson"})]
    assert sent[0]["familyName"] == "S."
    vis.disclosed("rest", "/users", "user", sent, ["u1"])
    entry = session.execute(select(LedgerEntry)).scalar_one()
    assert (entry.app_id, entry.district_id, entry.disclosed_at) == (creds.app_id, small, NOW)
    # Same app, same secret: the same ids on the next request.
    again = visibility_for(session, app_id=creds.app_id, district_id=small, secret_key=SECRET)
    assert again.resolve_id("user", sent[0]["sourcedId"]) == "u1"


def test_both_implementations_satisfy_the_contract(session, small):
    # The protocol is structural; both must offer every method the channels call.
    for name in ("refusal", "preferred_names", "where", "fields", "filterable", "resolve_id", "present", "disclosed"):
        assert callable(getattr(Unrestricted(), name))
        assert callable(getattr(PolicyVisibility, name))


def test_outside_the_contract_window_the_policy_shares_nothing(session, register, small):
    creds = register()
    document = {**MINIMUM_POLICY, "schools": ["s1"],
                "contract": {"start": "2026-08-01", "end": "2027-07-31"}}
    set_policy(session, app_id=creds.app_id, district_id=small, document=document, now=utcnow())
    cache = PolicyCache()
    version = ("v", 1)

    def at(day: dt.date):
        return visibility_for(session, app_id=creds.app_id, district_id=small, secret_key=SECRET,
                              clock=lambda: dt.datetime.combine(day, dt.time(8)),
                              policy_version=version, cache=cache)

    inside = at(dt.date(2027, 7, 31))
    assert inside.refusal() is None and visible_users(session, inside) == ["t-hoover", "u1"]
    after = at(dt.date(2027, 8, 1))
    assert after.refusal() == "The district's contract with this app ended on 2027-07-31."
    assert after.policy is None and visible_users(session, after) == []
    assert after.fields("user") == frozenset({"sourcedId", "status", "dateLastModified"})
    before = at(dt.date(2026, 7, 31))
    assert before.refusal() == "The district's contract with this app starts on 2026-08-01."
    assert visible_users(session, before) == []
    # The cached predicates of the policy version in force are not the closed ones.
    assert visible_users(session, at(dt.date(2026, 8, 1))) == ["t-hoover", "u1"]
