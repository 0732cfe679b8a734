"""Ids checked whole by one rule each, and validation problems built by one helper."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import get, post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient

from bookrec_catalog.catalog import is_book_id, is_user_id
from bookrec_common.errors import ValidationFailed, field_error, invalid
from bookrec_common.params import BookIdPath, UserIdPath, check_book_id, check_book_ids, check_user_id
from bookrec_common.service import create_service_app
from bookrec_common.settings import ServiceSettings

USER_ID_CHARACTERS = set(string.ascii_letters + string.digits + "_.@-")


@given(st.one_of(st.text(alphabet=string.ascii_letters + "_.@-/ \n#é", max_size=70), st.integers(),
                 st.none()))
def test_the_user_id_rule_is_its_definition(value):
    expected = isinstance(value, str) and 1 <= len(value) <= 64 and set(value) <= USER_ID_CHARACTERS
    assert is_user_id(value) is expected


@pytest.mark.parametrize("value", ["OL1W", "OL123456789012W", "GB1", "GB12345678"])
def test_book_ids_of_both_catalogues_are_accepted(value):
    assert is_book_id(value) and check_book_id(value) == value


@pytest.mark.parametrize("value", ["", "ol1w", "OL1M", "OL1", "OL0W", "OL1W ", "OL1W\n", "/works/OL1W", "1",
                                   "OL" + "1" * 13 + "W", "GB0", "GB123456789", 7, None])
def test_anything_else_is_no_book_id(value):
    assert not is_book_id(value)


def test_a_malformed_id_is_one_field_error_with_the_rule_in_the_detail():
    with pytest.raises(ValidationFailed) as book:
        check_book_id("OL1W\n", "book_id", "body")
    assert book.value.errors == [{"field": "book_id", "message": "malformed book id", "source": "body"}]
    assert "'OL1W\\n' is not a book id" in book.value.detail and "OL45883W" in book.value.detail
    with pytest.raises(ValidationFailed) as user:
        check_user_id("alice\n")
    assert user.value.errors == [{"field": "user_id", "message": "malformed user id", "source": "path"}]
    assert "1..64 characters" in user.value.detail
    assert check_user_id("alice@example.org") == "alice@example.org"


def test_every_malformed_id_of_a_list_is_named_by_its_position():
    assert check_book_ids(["OL1W", "GB2"]) == ["OL1W", "GB2"]
    with pytest.raises(ValidationFailed) as err:
        check_book_ids(["OL1W", "nope", "OL0W", "/works/OL1W"])
    assert [(e["field"], e["source"]) for e in err.value.errors] == [
        ("book_ids[1]", "body"), ("book_ids[2]", "body"), ("book_ids[3]", "body")]
    assert err.value.detail.startswith("3 malformed book id(s)")


def test_one_helper_builds_field_errors_in_one_argument_order():
    assert field_error("limit", "at most 100", "query") == {"field": "limit", "message": "at most 100",
                                                            "source": "query"}
    assert field_error("query", "empty")["source"] == "body"
    problem = invalid("min_year", "must not be after max_year")
    assert (problem.status, problem.code, problem.detail) == (400, "validation_failed",
                                                              "min_year: must not be after max_year")
    assert problem.errors == [field_error("min_year", "must not be after max_year", "body")]
    assert invalid("cursor", "forged", "query", detail="not a paging token").detail == "not a paging token"


@get("/shelves/{user_id:str}/{book_id:str}")
async def shelf(user_id: UserIdPath, book_id: BookIdPath) -> dict[str, str]:
    return {"user_id": check_user_id(user_id), "book_id": check_book_id(book_id)}


@post("/strict")
async def strict(data: JSONBody[dict[str, int]]) -> dict[str, int]:
    return data


@pytest.fixture
async def client():
    app = create_service_app(ServiceSettings(service_name="params-test", access_log=False), [shelf, strict])
    async with AsyncTestClient(app) as c:
        yield c


async def test_path_ids_are_documented_by_their_pattern_and_checked_whole_by_the_handler(client):
    schema = (await client.get("/schema/openapi.json")).json()
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/shelves/{user_id}/{book_id}"]["get"]
                  ["parameters"]}
    assert parameters["user_id"]["pattern"] == r"^[A-Za-z0-9_.@-]{1,64}$"
    assert parameters["book_id"]["pattern"].startswith("^(?:OL")
    assert (await client.get("/shelves/alice/OL7W")).json() == {"user_id": "alice", "book_id": "OL7W"}
    # A trailing newline satisfies Python's `$`: only the whole-value check refuses it, with its own words.
    for path, field in (("/shelves/alice%0A/OL7W", "user_id"), ("/shelves/alice/OL7W%0A", "book_id"),
                        ("/shelves/al%20ice/OL7W", "user_id")):
        r = await client.get(path)
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"] == [{"field": field, "message": f"malformed {field.replace('_', ' ')}",
                                       "source": "path"}]


async def test_framework_validation_errors_take_the_same_shape(client):
    r = await client.post("/strict", content=b'{"a": "x"}')
    assert r.status_code == 400
    [error] = r.json()["errors"]
    assert set(error) == {"field", "message", "source"} and error["source"] == "body"
