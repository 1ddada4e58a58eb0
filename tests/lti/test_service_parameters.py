"""The NRPS and AGS endpoints' parameters: paging values a database cannot take (huge, negative,
not numeric) and NUL characters (which PostgreSQL refuses) are answered 400 with the service's
error body, never 500, on both backends."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.store.lti import LineItem, Result

from test_ags import call, create, path, score
from test_nrps import get, memberships_url

HUGE = "99999999999999999999"


@pytest.fixture
def token(tool, service_token):
    return service_token(tool)


@pytest.fixture
def item(client, tool, token):
    return create(client, f"/lti/deployments/{tool.deployment_id}/contexts/k1/lineitems", token)


def _services(client, tool, token, item):
    """GET each paged service with extra query parameters: name -> request function."""
    items = f"/lti/deployments/{tool.deployment_id}/contexts/k1/lineitems"
    results = path(item["id"]) + "/results"
    return {
        "memberships": lambda **params: get(client, memberships_url(tool, "k1"), token, **params),
        "lineitems": lambda **params: call(client, "GET", items, token, **params),
        "results": lambda **params: call(client, "GET", results, token, **params),
    }


def _invalid(description: str) -> dict:
    return {"error": "invalid_request", "error_description": description}


@pytest.mark.parametrize("service", ["memberships", "lineitems", "results"])
@pytest.mark.parametrize("params, description", [
    ({"offset": HUGE},
     f"The offset parameter must be at most 2147483647 (int32), got '{HUGE}'."),
    ({"offset": "9" * 5000},
     f"The offset parameter must be at most 2147483647 (int32), got '{'9' * 5000}'."),
    ({"offset": "2147483648"},
     "The offset parameter must be at most 2147483647 (int32), got '2147483648'."),
    ({"offset": "-1"}, "The offset parameter must be a whole number, got '-1'."),
    ({"offset": "x"}, "The offset parameter must be a whole number, got 'x'."),
    ({"offset": "\uff19"}, "The offset parameter must be a whole number, got '\uff19'."),
    ({"offset": " 1"}, "The offset parameter must be a whole number, got ' 1'."),
    ({"limit": "-5"}, "The limit parameter must be a whole number, got '-5'."),
    ({"limit": "0"}, "The limit parameter must be at least 1, got '0'."),
    ({"limit": "1.5"}, "The limit parameter must be a whole number, got '1.5'."),
    ({"limit": "1\x00"}, "The query parameter 'limit' contains a NUL character, which is not allowed."),
    ({"offset": "\x00"}, "The query parameter 'offset' contains a NUL character, which is not allowed."),
])
def test_bad_paging_is_a_400(client, tool, token, item, service, params, description):
    response = _services(client, tool, token, item)[service](**params)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.get_json() == _invalid(description)


@pytest.mark.parametrize("service", ["memberships", "lineitems", "results"])
def test_a_huge_limit_is_capped_not_refused(client, tool, token, item, app, service):
    app.config["LTI_MAX_LIMIT"] = 1
    response = _services(client, tool, token, item)[service](limit=HUGE, offset="0")
    assert response.status_code == 200
    body = response.get_json()
    assert len(body["members"] if service == "memberships" else body) <= 1
    if service == "memberships":  # k1 has two members: the next page is linked with the cap
        assert response.headers["Link"].endswith('?limit=1&offset=1>; rel="next"')


@pytest.mark.parametrize("service, name", [
    ("memberships", "role"), ("memberships", "rlid"), ("lineitems", "tag"),
    ("lineitems", "resource_id"), ("lineitems", "resource_link_id"), ("results", "user_id"),
])
def test_nul_in_a_text_parameter_is_a_400(client, tool, token, item, service, name):
    response = _services(client, tool, token, item)[service](**{name: "a\x00b"})
    assert response.status_code == 400
    assert response.get_json() == _invalid(
        f"The query parameter {name!r} contains a NUL character, which is not allowed.")


def test_nul_in_a_path_parameter_is_a_400(client, tool, token, item):
    base = f"/lti/deployments/{tool.deployment_id}/contexts"
    for url, name in ((f"{base}/k%00/memberships", "context_id"),
                      (f"{base}/k1/lineitems/a%00", "item_id"),
                      (f"/lti/deployments/x%00/contexts/k1/lineitems", "deployment_id")):
        response = call(client, "GET", url, token)
        assert response.status_code == 400, url
        assert response.get_json() == _invalid("The path contains a NUL character, which is not allowed.")


def test_the_bearer_check_comes_first(client, tool, item):
    response = get(client, memberships_url(tool, "k1"), "not-a-token", offset=HUGE)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


@pytest.mark.parametrize("fields, description", [
    ({"user": "u\x001"}, "The body contains a NUL character, which is not allowed."),
    ({"comment": "ok\x00"}, "The body contains a NUL character, which is not allowed."),
])
def test_nul_in_a_score_is_a_400_and_stores_nothing(client, token, item, database, fields,
                                                    description):
    response = score(client, item, token, **fields)
    assert response.status_code == 400
    assert response.get_json() == _invalid(description)
    with database.session_scope() as session:
        assert session.execute(select(Result)).first() is None


def test_nul_in_a_line_item_is_a_400_and_stores_nothing(client, tool, token, item, database):
    base = f"/lti/deployments/{tool.deployment_id}/contexts/k1/lineitems"
    for body, description in (({"label": "a\x00", "scoreMaximum": 1},
                                "The body contains a NUL character, which is not allowed."),
                              ({"label": "a", "scoreMaximum": 1, "resourceLinkId": "\x00"},
                               "The body contains a NUL character, which is not allowed.")):
        response = call(client, "POST", base, token, body)
        assert response.status_code == 400
        assert response.get_json() == _invalid(description)
        response = call(client, "PUT", path(item["id"]), token, body)
        assert response.status_code == 400
        assert response.get_json() == _invalid(description)
    with database.session_scope() as session:
        assert session.execute(select(LineItem.title)).scalars().all() == ["Quiz 1"]
