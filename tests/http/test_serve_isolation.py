"""``gateway serve`` runs gunicorn inside the CLI's app context, which its workers inherit: each
request must still get its own context (``g``, database session, visibilities)."""
from __future__ import annotations

from sqlalchemy import func, select
from werkzeug.test import Client

from gateway.cli.serve import isolated
from gateway.store.sharing import LedgerEntry

BASE = "/ims/oneroster/rostering/v1p2"


def test_each_request_gets_a_fresh_context_under_an_inherited_app_context(app, database,
                                                                          load_small, make_token):
    load_small()
    token = make_token()
    served = Client(isolated(app))
    with app.app_context():  # what `gateway serve` leaves pushed in every worker
        for _ in range(3):
            response = served.get(f"{BASE}/users?limit=2",
                                  headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
    # Every disclosure was committed by its own request (a visibility kept from an earlier
    # request would have written into that request's finished session, never committed).
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == 3
