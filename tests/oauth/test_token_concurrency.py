"""The token endpoint under concurrency: another worker writing between this request's read of the
client and its write of the token must not fail the request (SQLite refuses to turn a read
transaction into a write once another writer has committed)."""
from __future__ import annotations

from sqlalchemy import func, select, update

from gateway.oauth import server as oauth_server
from gateway.store.apps import AccessToken
from gateway.store.models import District


def test_a_write_by_another_worker_between_the_read_and_the_token_does_not_fail_it(
        database, credentials, request_token, monkeypatch):
    record_token = oauth_server.record_token

    def after_another_worker_wrote(*args, **kwargs):
        with database.session_scope() as other:
            other.execute(update(District).values(name=District.name + " "))
        return record_token(*args, **kwargs)

    monkeypatch.setattr(oauth_server, "record_token", after_another_worker_wrote)
    response = request_token(credentials, grant_type="client_credentials")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(AccessToken)).scalar_one() == 1
