"""The OneRoster REST client against a real HTTP server scripted per test: paging by Link and by
offset, servers that page wrongly, tokens that expire, and every way a source can fail."""
from __future__ import annotations

import socket

import pytest

from gateway.oneroster.vocabulary import (SCOPE_ROSTER, SCOPE_ROSTER_CORE,
                                          SCOPE_ROSTER_DEMOGRAPHICS)
from gateway.sis.client import (CredentialsRefused, NotOneRoster, OneRosterClient,
                                PagingInconsistent, SourceTimeout, SourceUnreachable)

from stub_source import Answer, Seen, StubSource, token_answer

ROSTERING = "/ims/oneroster/rostering/v1p2"
USERS = [{"sourcedId": f"u{i}", "status": "active"} for i in range(1, 6)]


@pytest.fixture
def serve():
    """Start a stub source answering with the given function; stopped after the test."""
    started: list[StubSource] = []

    def start(answer) -> StubSource:
        stub = StubSource(answer)
        started.append(stub)
        return stub
    yield start
    for stub in started:
        stub.close()


def client_of(stub: StubSource, **options) -> OneRosterClient:
    return OneRosterClient(stub.base + ROSTERING, stub.base + "/oauth/token", "cid", "secret",
                           **options)


def read_all(client: OneRosterClient, collection: str = "users", filter: str | None = None) -> list[str]:
    return [r["sourcedId"] for records, _ in client.pages(collection, filter) for r in records]


def test_pages_follow_the_link_headers_next_relative_or_absolute(serve):
    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            return token_answer(request)
        # Cursors the client cannot guess: it must follow the links.
        cursor = request.query.get("cursor")
        if cursor is None:
            return Answer(body={"users": USERS[:2]}, headers={
                "X-Total-Count": "5", "Link": f'<{ROSTERING}/users?cursor=b>; rel="next"'})
        if cursor == "b":
            return Answer(body={"users": USERS[2:4]}, headers={
                "X-Total-Count": "5",
                "Link": f'<{stub.base}{ROSTERING}/users?cursor=c>; rel="next", <{stub.base}>; rel="first"'})
        return Answer(body={"users": USERS[4:]}, headers={"X-Total-Count": "5",
                                                          "Link": f'<{stub.base}>; rel="first"'})
    stub = serve(answer)
    client = client_of(stub)
    assert read_all(client, filter="status='active'") == ["u1", "u2", "u3", "u4", "u5"]
    assert [r.query for r in stub.gets("/users")] == [
        {"limit": "1000", "filter": "status='active'"}, {"cursor": "b"}, {"cursor": "c"}]
    token_request = stub.seen[0]
    assert token_request.form == {"grant_type": "client_credentials",
                                  "scope": f"{SCOPE_ROSTER} {SCOPE_ROSTER_DEMOGRAPHICS}"}
    assert token_request.headers["Authorization"] == "Basic Y2lkOnNlY3JldA=="
    assert {r.headers["Authorization"] for r in stub.gets("/users")} == {"Bearer token-1"}
    assert len(client.requested) == 3


def test_without_links_pages_by_offset_up_to_the_count(serve):
    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            return token_answer(request)
        # A server that caps every page at 2 records whatever limit is asked.
        offset = int(request.query.get("offset", "0"))
        return Answer(body={"users": USERS[offset:offset + 2]}, headers={"X-Total-Count": "5"})
    stub = serve(answer)
    assert read_all(client_of(stub)) == ["u1", "u2", "u3", "u4", "u5"]
    assert [r.query.get("offset") for r in stub.gets("/users")] == [None, "2", "4"]


def test_without_links_or_count_reads_until_an_empty_page(serve):
    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            return token_answer(request)
        offset = int(request.query.get("offset", "0"))
        return Answer(body={"users": USERS[offset:offset + 2]})
    stub = serve(answer)
    assert read_all(client_of(stub)) == ["u1", "u2", "u3", "u4", "u5"]
    assert [r.query.get("offset") for r in stub.gets("/users")] == [None, "2", "4", "5"]


def test_a_server_that_says_more_and_returns_nothing_is_stopped_and_its_count_checked(serve):
    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            return token_answer(request)
        offset = int(request.query.get("offset", "0"))
        links = {"Link": f'<{ROSTERING}/users?offset={offset + 2}>; rel="next"'}
        return Answer(body={"users": USERS[:2] if offset == 0 else []},
                      headers={"X-Total-Count": "5", **links})
    stub = serve(answer)
    with pytest.raises(PagingInconsistent) as error:
        read_all(client_of(stub))
    assert str(error.value) == (f"{stub.base}{ROSTERING}/users: the source counted 5 records "
                                "(X-Total-Count) but its pages held 2")
    # One empty page, then no more asking.
    assert len(stub.gets("/users")) == 2


def test_a_server_that_says_more_without_a_count_ends_at_its_empty_page(serve):
    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            return token_answer(request)
        offset = int(request.query.get("offset", "0"))
        return Answer(body={"users": USERS[:2] if offset == 0 else []},
                      headers={"Link": f'<{ROSTERING}/users?offset={offset + 2}>; rel="next"'})
    stub = serve(answer)
    assert read_all(client_of(stub)) == ["u1", "u2"]
    assert len(stub.gets("/users")) == 2


def test_a_server_that_ignores_offset_is_an_error_not_an_endless_pull(serve):
    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            return token_answer(request)
        return Answer(body={"users": USERS[:2]})  # no links, no count, offset ignored
    stub = serve(answer)
    with pytest.raises(PagingInconsistent) as error:
        read_all(client_of(stub))
    assert str(error.value) == (f"{stub.base}{ROSTERING}/users?limit=1000&offset=2: the same "
                                "records as the page before; the source ignores the paging "
                                "parameters")


def test_a_next_link_that_repeats_is_an_error(serve):
    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            return token_answer(request)
        # Page 2 names itself as the next page.
        page = USERS[2:4] if request.query.get("page") else USERS[:2]
        return Answer(body={"users": page},
                      headers={"Link": f'<{ROSTERING}/users?page=2>; rel="next"'})
    stub = serve(answer)
    with pytest.raises(PagingInconsistent) as error:
        read_all(client_of(stub))
    assert str(error.value) == (f"{stub.base}{ROSTERING}/users?page=2: the Link header's next "
                                "page repeats an earlier one; the collection cannot be read whole")


def test_a_next_link_to_another_address_is_not_followed(serve):
    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            return token_answer(request)
        offset = int(request.query.get("offset", "0"))
        # The token must never go to the other host: the client pages by offset here instead.
        return Answer(body={"users": USERS[offset:offset + 2]}, headers={
            "X-Total-Count": "5", "Link": f'<http://other.invalid{ROSTERING}/users?o={offset + 2}>; rel="next"'})
    stub = serve(answer)
    assert read_all(client_of(stub)) == ["u1", "u2", "u3", "u4", "u5"]
    assert [r.query.get("offset") for r in stub.gets("/users")] == [None, "2", "4"]


def test_a_server_refusing_a_large_limit_is_asked_with_the_default(serve):
    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            return token_answer(request)
        if int(request.query["limit"]) > 100:
            return Answer(400, {"imsx_codeMajor": "failure", "imsx_description": "limit too large"})
        return Answer(body={"users": USERS}, headers={"X-Total-Count": "5"})
    stub = serve(answer)
    assert read_all(client_of(stub)) == ["u1", "u2", "u3", "u4", "u5"]
    assert [r.query["limit"] for r in stub.gets("/users")] == ["1000", "100"]


def test_a_token_refused_mid_pull_is_fetched_again_once(serve):
    issued = []

    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            issued.append(f"token-{len(issued) + 1}")
            return token_answer(request, token=issued[-1])
        offset = int(request.query.get("offset", "0"))
        if offset and request.headers["Authorization"] == "Bearer token-1":
            return Answer(401, {"imsx_codeMajor": "failure", "imsx_description": "token expired"})
        return Answer(body={"users": USERS[offset:offset + 3]}, headers={"X-Total-Count": "5"})
    stub = serve(answer)
    assert read_all(client_of(stub)) == ["u1", "u2", "u3", "u4", "u5"]
    assert [r.headers["Authorization"] for r in stub.gets("/users")] == [
        "Bearer token-1", "Bearer token-1", "Bearer token-2"]


def test_a_token_is_fetched_again_before_it_expires(serve):
    now = [0.0]
    tokens = []

    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            tokens.append(f"token-{len(tokens) + 1}")
            return token_answer(request, token=tokens[-1], expires_in=100)
        offset = int(request.query.get("offset", "0"))
        return Answer(body={"users": USERS[offset:offset + 2]}, headers={"X-Total-Count": "5"})
    stub = serve(answer)
    client = client_of(stub, clock=lambda: now[0])
    seen = []
    for records, _ in client.pages("users"):
        seen += records
        now[0] += 40  # the token lasts 100 s, and is renewed 30 s before that
    assert len(seen) == 5
    assert [r.headers["Authorization"] for r in stub.gets("/users")] == [
        "Bearer token-1", "Bearer token-1", "Bearer token-2"]


def test_a_refused_scope_set_is_followed_by_a_smaller_one(serve):
    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            if request.form["scope"] != SCOPE_ROSTER_CORE:
                return Answer(400, {"error": "invalid_scope"})
            return Answer(body={"access_token": "t", "token_type": "bearer", "expires_in": 60})
        return Answer(body={"users": []}, headers={"X-Total-Count": "0"})
    stub = serve(answer)
    client = client_of(stub)
    client.connect()
    assert [r.form["scope"] for r in stub.seen] == [
        f"{SCOPE_ROSTER} {SCOPE_ROSTER_DEMOGRAPHICS}", f"{SCOPE_ROSTER_CORE} {SCOPE_ROSTER_DEMOGRAPHICS}",
        SCOPE_ROSTER, SCOPE_ROSTER_CORE]
    # No scope in the answer: what was asked was granted (RFC 6749 §5.1).
    assert client.granted_scopes == {SCOPE_ROSTER_CORE}


def test_refused_credentials_say_so(serve):
    stub = serve(lambda request: Answer(401, {"error": "invalid_client"}))
    with pytest.raises(CredentialsRefused) as error:
        client_of(stub).connect()
    assert str(error.value) == (f"the token endpoint {stub.base}/oauth/token refused the client "
                                "credentials (401 invalid_client): check the client_id and secret")


def test_a_token_url_that_is_no_token_endpoint_says_so(serve):
    stub = serve(lambda request: Answer(200, "<html>Welcome</html>"))
    with pytest.raises(NotOneRoster) as error:
        client_of(stub).connect()
    assert str(error.value) == (f"{stub.base}/oauth/token answered 200 without an access_token: "
                                "not an OAuth 2.0 token endpoint")


def test_a_page_that_is_not_oneroster_says_so(serve):
    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            return token_answer(request)
        return Answer(200, "<html>Sign in</html>")
    stub = serve(answer)
    with pytest.raises(NotOneRoster) as error:
        read_all(client_of(stub))
    assert str(error.value) == (f"{stub.base}{ROSTERING}/users?limit=1000 answered 200 with "
                                "text/html, not a OneRoster 1.2 'users' collection")


def test_a_source_that_stalls_times_out(serve):
    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            return token_answer(request)
        return Answer(body={"users": []}, delay=2.0)
    stub = serve(answer)
    with pytest.raises(SourceTimeout) as error:
        read_all(client_of(stub, timeout=0.3))
    assert str(error.value) == (f"{stub.base}{ROSTERING}/users: no answer within 0.3 s "
                                "(GATEWAY_SIS_PULL_TIMEOUT_SECONDS)")


def test_an_unreachable_source_says_so():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OneRosterClient(f"http://127.0.0.1:{port}{ROSTERING}",
                             f"http://127.0.0.1:{port}/oauth/token", "cid", "secret")
    with pytest.raises(SourceUnreachable) as error:
        client.connect()
    assert str(error.value) == f"cannot reach http://127.0.0.1:{port}/oauth/token: Connection refused"


def test_brief_overloads_are_waited_out(serve):
    answers = iter([Answer(503, headers={"Retry-After": "7"}), Answer(429)])

    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            return token_answer(request)
        return next(answers, None) or Answer(body={"users": USERS}, headers={"X-Total-Count": "5"})
    stub = serve(answer)
    waits: list[float] = []
    client = client_of(stub, sleep=waits.append)
    assert len(read_all(client)) == 5
    assert waits == [7.0, 2.0]


def test_the_sources_clock_is_kept_from_its_first_answer(serve):
    def answer(request: Seen) -> Answer:
        if request.path == "/oauth/token":
            return token_answer(request)
        return Answer(body={"users": []}, headers={"X-Total-Count": "0",
                                                   "Date": "Sat, 05 Dec 2026 10:00:00 GMT"})
    stub = serve(answer)
    client = client_of(stub)
    read_all(client)
    assert client.server_date.isoformat() == "2026-12-05T10:00:00"
