"""The project's generated OpenAPI document: committed, valid, and in agreement with the official one."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from gateway.oneroster.endpoints import ENDPOINTS
from gateway.oneroster.openapi import DOCUMENT_NAME, build_openapi, render_openapi, write_openapi
from gateway.oneroster.schemas import ExtensibleEnum

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / "specs" / DOCUMENT_NAME
OFFICIAL = REPO_ROOT.parent / "shared" / "specs" / "oneroster" / DOCUMENT_NAME

# Deliberate difference: the official ext: pattern is unanchored, ours is anchored.
PATTERN_EQUIVALENTS = {ExtensibleEnum.PATTERN: r"(ext:)[a-zA-Z0-9\.\-_]+"}


@pytest.fixture(scope="module")
def ours() -> dict:
    """The document as generated now."""
    return build_openapi()


@pytest.fixture(scope="module")
def official() -> dict:
    """The official 1EdTech document (missing: fails under CI=true, skips elsewhere)."""
    if not OFFICIAL.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"official OneRoster document missing: {OFFICIAL}")
        pytest.skip(f"official OneRoster document not available at {OFFICIAL}")
    return json.loads(OFFICIAL.read_text(encoding="utf-8"))


def test_the_committed_document_is_what_the_generator_produces(ours):
    assert COMMITTED.is_file(), f"run: python -m gateway.oneroster.openapi {COMMITTED}"
    assert COMMITTED.read_text(encoding="utf-8") == render_openapi(ours), (
        f"{COMMITTED} is stale: regenerate it with python -m gateway.oneroster.openapi")


def test_write_openapi(tmp_path):
    target = write_openapi(tmp_path / DOCUMENT_NAME)
    assert target.read_text(encoding="utf-8") == render_openapi(build_openapi())
    assert json.loads(target.read_text(encoding="utf-8"))["openapi"] == "3.0.3"


def test_it_is_a_valid_openapi_3_document(ours):
    validate(ours)
    validate(json.loads(COMMITTED.read_text(encoding="utf-8")))


def test_server_and_token_url_can_be_set():
    document = build_openapi(server_url="https://sis.example/ims/oneroster/rostering/v1p2",
                             token_url="https://sis.example/oauth/token")
    validate(document)
    assert document["servers"][0]["url"] == "https://sis.example/ims/oneroster/rostering/v1p2"
    flows = document["components"]["securitySchemes"]["OAuth2CC"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == "https://sis.example/oauth/token"


def test_it_was_not_copied_from_the_official_document(ours, official):
    assert ours["info"] != official["info"]
    assert render_openapi(ours) != render_openapi(official)


def _shape(node):
    """A JSON schema without prose, with order-free lists sorted, for comparison."""
    if isinstance(node, list):
        return [_shape(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key == "properties":
            out[key] = {name: _shape(schema) for name, schema in value.items()}
        elif key in ("enum", "required"):
            out[key] = sorted(value)
        elif key == "pattern":
            out[key] = PATTERN_EQUIVALENTS.get(value, value)
        else:
            out[key] = _shape(value)
    return out


def schema_differences(ours: dict, official: dict) -> list[str]:
    """Every difference between two documents' component schemas, as readable lines."""
    problems = []
    mine, theirs = ours["components"]["schemas"], official["components"]["schemas"]
    for name in sorted(set(theirs) - set(mine)):
        problems.append(f"{name}: missing from ours")
    for name in sorted(set(mine) - set(theirs)):
        problems.append(f"{name}: not in the official document")
    for name in sorted(set(mine) & set(theirs)):
        a, b = _shape(mine[name]), _shape(theirs[name])
        pa, pb = a.get("properties", {}), b.get("properties", {})
        if list(pa) != list(pb):
            missing = [p for p in pb if p not in pa]
            extra = [p for p in pa if p not in pb]
            problems.append(f"{name}: properties differ: missing {missing}, extra {extra}"
                            + ("" if missing or extra else f", order {list(pa)} vs {list(pb)}"))
        for prop in pa.keys() & pb.keys():
            if pa[prop] != pb[prop]:
                problems.append(f"{name}.{prop}: ours {json.dumps(pa[prop], sort_keys=True)} "
                                f"!= official {json.dumps(pb[prop], sort_keys=True)}")
        for key in sorted((a.keys() | b.keys()) - {"properties"}):
            if a.get(key) != b.get(key):
                problems.append(f"{name}.<{key}>: ours {a.get(key)!r} != official {b.get(key)!r}")
    return problems


def test_every_schema_agrees_with_the_official_document(ours, official):
    problems = schema_differences(ours, official)
    assert not problems, "schemas differ from the official document:\n" + "\n".join(problems)


def test_the_comparison_reports_what_differs(ours):
    changed = json.loads(json.dumps(ours))
    schemas = changed["components"]["schemas"]
    schemas["UserDType"]["required"].remove("roles")
    schemas["OrgDType"]["properties"]["name"] = {"type": "integer"}
    del schemas["ClassDType"]["properties"]["periods"]
    schemas["RoleDType"]["properties"]["roleType"]["enum"].append("tertiary")
    assert schema_differences(changed, ours) == [
        "ClassDType: properties differ: missing ['periods'], extra []",
        "OrgDType.name: ours {\"type\": \"integer\"} != official {\"type\": \"string\"}",
        "RoleDType.roleType: ours {\"enum\": [\"primary\", \"secondary\", \"tertiary\"], "
        "\"type\": \"string\"} != official {\"enum\": [\"primary\", \"secondary\"], "
        "\"type\": \"string\"}",
        "UserDType.<required>: ours ['dateLastModified', 'enabledUser', 'familyName', 'givenName', "
        "'sourcedId', 'status'] != official ['dateLastModified', 'enabledUser', 'familyName', "
        "'givenName', 'roles', 'sourcedId', 'status']",
    ]


def test_operations_agree_with_the_official_document(ours, official):
    assert list(ours["paths"]) == list(official["paths"])
    for path, item in official["paths"].items():
        theirs, mine = item["get"], ours["paths"][path]["get"]
        assert set(ours["paths"][path]) == {"get"}
        assert mine["operationId"] == theirs["operationId"]
        assert mine["tags"] == theirs["tags"]
        assert mine["security"] == theirs["security"]
        names = [_parameter(ours, p)["name"] for p in mine["parameters"]]
        assert names == [p["name"] for p in theirs["parameters"]], path
        assert mine["responses"]["200"]["content"] == theirs["responses"]["200"]["content"]
        extra = set(mine["responses"]) - set(theirs["responses"])
        assert set(theirs["responses"]) <= set(mine["responses"]), path
        # Ours adds 404 to nested collections: an unknown parent is reported as unknownobject.
        assert extra == ({"404"} if "}/" in path else set()), path


def _parameter(document: dict, parameter: dict) -> dict:
    if "$ref" in parameter:
        return document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
    return parameter


def test_collections_document_paging_headers_and_singles_take_only_fields(ours):
    for ep in ENDPOINTS:
        operation = ours["paths"][ep.path]["get"]
        parameters = [_parameter(ours, p) for p in operation["parameters"]]
        query = [p for p in parameters if p["in"] == "query"]
        headers = operation["responses"]["200"].get("headers", {})
        if ep.collection:
            assert [p["name"] for p in query] == ["limit", "offset", "sort", "orderBy", "filter",
                                                  "fields"]
            assert set(headers) == {"X-Total-Count", "Link"}
        else:
            assert [p["name"] for p in query] == ["fields"]
            assert headers == {}
            assert "404" in operation["responses"]
    fields = ours["components"]["parameters"]["fields"]
    assert fields["explode"] is False and fields["style"] == "form"
    limit = ours["components"]["parameters"]["limit"]["schema"]
    assert limit["default"] == 100 and limit["minimum"] == 1


def test_error_responses_carry_the_imsx_body(ours):
    for name, response in ours["components"]["responses"].items():
        assert response["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/imsx_StatusInfoDType"}, name
    responses = ours["paths"]["/users"]["get"]["responses"]
    assert sorted(responses) == ["200", "400", "401", "403", "422", "429", "500", "default"]


def test_nothing_is_nullable(ours):
    assert '"nullable"' not in render_openapi(ours)
