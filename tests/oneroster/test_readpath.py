"""The general read path, as data: every service's endpoint table, the store's relations, one
filters module, sort parsed once."""
from __future__ import annotations

import pytest

from gateway.errors import InvalidData
from gateway.oneroster import filters, query, service
from gateway.oneroster.endpoints import (BASE_PATH, ROSTERING, SERVICES, Endpoint, endpoint)
from gateway.oneroster.query import Sort, parse_sort_spec
from gateway.oneroster.service import parse_collection_params
from gateway.store import rostering as store


def test_every_service_registers_its_endpoints_with_their_methods_under_its_base():
    assert SERVICES["rostering"] is ROSTERING
    for served in SERVICES.values():
        assert served.endpoints
        for e in served.endpoints:
            assert e.full_path == served.base_path + e.path
            assert e.method == e.methods[0]
            assert endpoint(e.operation_id) is e
    # Rostering is read-only, as before.
    assert {e.methods for e in ROSTERING.endpoints} == {("GET",)}
    assert ROSTERING.base_path == BASE_PATH
    with pytest.raises(KeyError):
        endpoint("putLineItem-not-served")


def test_an_endpoint_of_another_service_carries_its_own_base_and_methods():
    e = Endpoint("/things/{sourcedId}", "putThing", "class", False, ("s",), "T",
                 methods=("PUT", "DELETE"), base_path="/ims/oneroster/other/v1p2")
    assert e.full_path == "/ims/oneroster/other/v1p2/things/{sourcedId}"
    assert e.method == "PUT"


def test_every_nested_endpoint_follows_a_relation_of_the_store_returning_its_entity():
    nested = [e for s in SERVICES.values() for e in s.endpoints if e.nested]
    assert nested
    for e in nested:
        relation = store.RELATIONS[e.relation]
        assert relation.entity == e.entity
        assert relation.column.table is store.READ_TABLES[e.entity]
        for step in relation.steps:
            # Every hop stays inside the district.
            assert "district_id" in step.table.c


def test_filtering_lives_in_one_module():
    assert query.parse_filter is filters.parse_filter
    assert query.compile_filter is filters.compile_filter
    assert service.filter_field_names is filters.filter_field_names
    names = filters.filter_field_names("user")
    assert {"givenName", "roles.role", "roles.org.sourcedId", "agents.sourcedId",
            "primaryOrg.sourcedId", "metadata.*"} <= set(names)
    assert "password" not in names


@pytest.mark.parametrize("sort, order_by, expected", [
    (None, None, Sort((), False)),
    (None, "desc", Sort((), True)),
    ("familyName", None, Sort(("familyName",), False)),
    ("familyName, givenName,familyName", "desc", Sort(("familyName", "givenName"), True)),
])
def test_sort_is_parsed_once_into_a_value(sort, order_by, expected):
    assert parse_sort_spec(sort, order_by) == expected
    assert parse_collection_params(sort=sort, order_by=order_by).sort == expected


@pytest.mark.parametrize("sort, order_by, message", [
    (None, "up", "orderBy parameter must be 'asc' or 'desc'"),
    ("familyName,,givenName", None, "sort parameter has an empty entry"),
])
def test_a_bad_sort_is_refused_before_any_entity_is_known(sort, order_by, message):
    with pytest.raises(InvalidData, match=message):
        parse_collection_params(sort=sort, order_by=order_by)
