"""The rate and shelve request bodies: exactly what the contract says, decoded as the handler does; no I/O."""

import json
import string
from typing import get_args

from hypothesis import given
from hypothesis import strategies as st

from bookrec_catalog.catalog import SHELVES
from bookrec_common.errors import ValidationFailed, decode_strictly
from bookrec_ratings.models import RateRequest, Shelf, ShelveRequest

USER_ID_CHARACTERS = set(string.ascii_letters + string.digits + "_.@-")
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 8), st.integers(), st.floats(allow_nan=False,
                                                                                     allow_infinity=False),
              st.sampled_from(["5", "4.0", "", "five"])),
    lambda inner: st.one_of(st.lists(inner, max_size=2),
                            st.dictionaries(st.text(max_size=3), inner, max_size=2)),
    max_leaves=4,
)
# Valid values mixed in on purpose, so both sides of the rule are exercised.
user_ids = st.one_of(st.text(alphabet=sorted(USER_ID_CHARACTERS), min_size=1, max_size=64),
                     st.text(alphabet=string.ascii_letters + "_.@-/ \n\té", max_size=70), json_values)
ratings = st.one_of(st.integers(1, 5), json_values)


def accepted(body: bytes) -> RateRequest | None:
    try:
        return decode_strictly(body, RateRequest)
    except ValidationFailed as exc:
        assert exc.status == 400 and exc.errors
        return None


@given(user_ids, ratings)
def test_only_a_valid_user_and_an_integer_rating_from_one_to_five_are_accepted(user_id, rating):
    # null (like absent) means the token's user
    valid_user = user_id is None or (isinstance(user_id, str) and 1 <= len(user_id) <= 64
                                     and set(user_id) <= USER_ID_CHARACTERS)
    expected = valid_user and type(rating) is int and 1 <= rating <= 5
    decoded = accepted(json.dumps({"user_id": user_id, "rating": rating}).encode())
    assert (decoded is not None) is expected
    if decoded is not None:
        assert (decoded.user_id, decoded.rating) == (user_id, rating)


@given(st.dictionaries(st.sampled_from(["user_id", "rating", "extra", "userId"]), st.just(3), max_size=4))
def test_missing_and_unknown_fields_are_refused(body):
    body = {k: ("alice" if k == "user_id" else v) for k, v in body.items()}
    valid = "rating" in body and set(body) <= {"user_id", "rating"}
    assert (accepted(json.dumps(body).encode()) is not None) is valid


def test_a_body_that_is_not_a_json_object_is_refused():
    for raw in (b"", b"[]", b"null", b"{", b'"alice"', b'{"user_id": "a", "rating": 3}{}'):
        assert accepted(raw) is None


def test_the_shelf_type_is_the_catalogues_shelves():
    assert get_args(Shelf) == SHELVES


@given(st.one_of(st.sampled_from(SHELVES), json_values, st.text(max_size=20)))
def test_a_shelving_is_accepted_exactly_for_the_three_shelves_and_a_wrong_one_is_named(shelf):
    body = json.dumps({"shelf": shelf}).encode()
    try:
        request = decode_strictly(body, ShelveRequest)
    except ValidationFailed as exc:
        assert shelf not in SHELVES and [e["field"] for e in exc.errors or []] == ["shelf"]
        return
    assert shelf in SHELVES and request.shelf == shelf and request.user_id is None
