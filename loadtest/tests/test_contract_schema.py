"""The load test's contract (loadtest/contract.py) against the services' own OpenAPI documents.

Each service's app is built in-process from services.json's package, with placeholder settings: its
OpenAPI document (what GET /schema serves) is generated without starting the app, so nothing is
connected to. Every field of every contract struct must be in the documented answer of each route the
struct decodes (contract.ANSWERS) with the same JSON types; a field the service does not always send must
have a default in the contract; extra documented fields are allowed (the contract restates what the load
test reads). Problem, documented by no route, is held to the answers of the common error handler.
"""

from __future__ import annotations

import importlib
import json
from functools import cache
from typing import Any, Literal, get_args, get_type_hints

import msgspec
import pytest
from litestar import get
from litestar.testing import AsyncTestClient

from bookrec_common.errors import ValidationFailed
from bookrec_common.service import create_service_app
from bookrec_common.settings import ServiceSettings
from bookrec_local import definitions
from loadtest import contract

PRIMITIVES = {msgspec.inspect.StrType: "string", msgspec.inspect.IntType: "integer",
              msgspec.inspect.FloatType: "number", msgspec.inspect.BoolType: "boolean",
              msgspec.inspect.NoneType: "null", msgspec.inspect.AnyType: "any"}
NESTED = {"array": "an array", "map": "an object of any keys", "struct": "an object of named fields"}


@cache
def openapi(service: str) -> dict[str, Any]:
    """The service's OpenAPI document, as its app generates it (no lifespan: no I/O)."""
    package = definitions.services()[service]["package"]
    create_app = importlib.import_module(f"{package}.app").create_app
    # create_app(settings: <Service>Settings | None): its required fields (table names, token issuer) get
    # placeholders, never used since the app is not started.
    [settings_type] = [t for t in get_args(get_type_hints(create_app)["settings"]) if t is not type(None)]
    placeholders = {name: "unused" for name, field in settings_type.model_fields.items()
                    if field.is_required()}
    return create_app(settings_type(**placeholders)).openapi_schema.to_schema()


def documented_answer(service: str, method: str, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the JSON schema of the route's one 2xx answer, the document it lives in)."""
    document = openapi(service)
    operation = document["paths"][path][method.lower()]
    answers = [(status, answer) for status, answer in operation["responses"].items()
               if status.startswith("2")]
    assert len(answers) == 1, f"{method} {path}: documented 2xx answers {[s for s, _ in answers]}"
    return answers[0][1]["content"]["application/json"]["schema"], document


class Comparison:
    """Contract types against JSON schemas; `problems` says each difference with the field's path."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.problems: list[str] = []
        self.structs_seen: set[type] = set()
        self.optional_fields_sent: set[tuple[type, str]] = set()

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def _schema_alternatives(self, schema: dict[str, Any]) -> list[tuple[str, Any]]:
        schema = self._resolve(schema)
        for union in ("oneOf", "anyOf"):
            if union in schema:
                return [alt for option in schema[union] for alt in self._schema_alternatives(option)]
        if "enum" in schema:
            values = frozenset(v for v in schema["enum"] if v is not None)
            return [("enum", values), *([("null", None)] if None in schema["enum"] else [])]
        kinds = schema.get("type", "any")
        alternatives: list[tuple[str, Any]] = []
        for kind in kinds if isinstance(kinds, list) else [kinds]:
            if kind == "array":
                alternatives.append(("array", schema.get("items", {})))
            elif kind == "object" and "properties" in schema:
                alternatives.append(("struct", schema))
            elif kind == "object":
                extra = schema.get("additionalProperties", {})
                alternatives.append(("map", extra if isinstance(extra, dict) else {}))
            else:
                alternatives.append((kind, None))
        return alternatives

    def _contract_alternatives(self, kind: msgspec.inspect.Type) -> list[tuple[str, Any]]:
        if isinstance(kind, msgspec.inspect.Metadata):
            return self._contract_alternatives(kind.type)
        if isinstance(kind, msgspec.inspect.UnionType):
            return [alt for option in kind.types for alt in self._contract_alternatives(option)]
        if isinstance(kind, msgspec.inspect.LiteralType):
            return [("enum", frozenset(kind.values))]
        if isinstance(kind, msgspec.inspect.ListType):
            return [("array", kind.item_type)]
        if isinstance(kind, msgspec.inspect.DictType):
            return [("map", kind.value_type)]
        if isinstance(kind, msgspec.inspect.StructType):
            return [("struct", kind)]
        if type(kind) in PRIMITIVES:
            return [(PRIMITIVES[type(kind)], None)]
        raise TypeError(f"no JSON schema counterpart for {kind!r} in the comparison")

    def types(self, kind: msgspec.inspect.Type, schema: dict[str, Any], where: str, *,
              null_as_absent: bool = False) -> None:
        ours = dict(self._contract_alternatives(kind))
        theirs = dict(self._schema_alternatives(schema))
        if null_as_absent and "null" not in theirs:
            ours.pop("null", None)  # the contract's None default stands for "not sent", not for a JSON null
        plain = {k: v for k, v in ours.items() if k not in ("array", "map", "struct")}
        plain_theirs = {k: v for k, v in theirs.items() if k not in ("array", "map", "struct")}
        if plain != plain_theirs:
            self.problems.append(f"{where}: contract {_names(plain)}, documented {_names(plain_theirs)}")
        for nested in ("array", "map", "struct"):
            if (nested in ours) != (nested in theirs):
                side = "contract" if nested in ours else "documented answer"
                self.problems.append(f"{where}: only the {side} has {NESTED[nested]}")
            elif nested == "struct" and nested in ours:
                self.struct(ours[nested], theirs[nested], where)
            elif nested in ours:
                self.types(ours[nested], theirs[nested], f"{where}[]")

    def struct(self, info: msgspec.inspect.StructType, schema: dict[str, Any], where: str) -> None:
        self.structs_seen.add(info.cls)
        schema = self._resolve(schema)
        properties, required = schema.get("properties", {}), set(schema.get("required", []))
        for field in info.fields:
            at = f"{where}.{field.encode_name}"
            if field.required and field.encode_name not in properties:
                self.problems.append(f"{at}: not in the documented answer")
            elif field.required and field.encode_name not in required:
                self.problems.append(f"{at}: required by the contract, but the service does not always send "
                                     "it (give it a default)")
            if field.encode_name not in properties:
                continue
            if not field.required:
                self.optional_fields_sent.add((info.cls, field.name))
            self.types(field.type, properties[field.encode_name], at,
                       null_as_absent=not field.required and field.default is None)


def _names(alternatives: dict[str, Any]) -> list[str]:
    return sorted(f"one of {sorted(v)}" if k == "enum" else k for k, v in alternatives.items())


def compare(struct: type[msgspec.Struct], service: str, method: str, path: str) -> Comparison:
    schema, document = documented_answer(service, method, path)
    comparison = Comparison(document)
    comparison.struct(msgspec.inspect.type_info(struct), schema, f"{struct.__name__}")
    return comparison


ROUTES = [(struct, *route) for struct, routes in contract.ANSWERS.items() for route in routes]
CONTRACT_STRUCTS = {value for value in vars(contract).values()
                    if isinstance(value, type) and issubclass(value, msgspec.Struct)
                    and value is not msgspec.Struct}


@pytest.mark.parametrize(("struct", "service", "method", "path"), ROUTES,
                         ids=[f"{s.__name__}-{m} {p}" for s, _, m, p in ROUTES])
def test_each_contract_struct_matches_the_documented_answer_of_its_routes(struct, service, method, path):
    problems = compare(struct, service, method, path).problems
    assert not problems, "\n".join(problems)


def test_every_contract_struct_is_checked_and_every_optional_field_is_sent_by_one_of_its_routes():
    seen: set[type] = set()
    sent: set[tuple[type, str]] = set()
    for struct, service, method, path in ROUTES:
        comparison = compare(struct, service, method, path)
        seen |= comparison.structs_seen
        sent |= comparison.optional_fields_sent
    assert CONTRACT_STRUCTS - seen == {contract.Problem}  # Problem: see the next test
    optional = {(s, f.name) for s in seen for f in msgspec.inspect.type_info(s).fields if not f.required}
    assert optional - sent == set(), "contract fields no route documents"


# Contracts drifted from bookdetail's Book in each way the comparison must catch.
class Renamed(msgspec.Struct):
    book_id: str
    name: str  # the service says `title`


class Retyped(msgspec.Struct):
    book_id: str
    rating_count: float  # the service says integer
    cover_id: int  # the service says integer or null


class SometimesSent(msgspec.Struct):
    book_id: str
    original_title: str | None  # sent only when it differs: needs a default here


class NestedAuthor(msgspec.Struct):
    author_id: str | None
    name: int


class Nested(msgspec.Struct):
    book_id: str
    authors: list[NestedAuthor]
    ratings_distribution: dict[str, str]


class Narrowed(msgspec.Struct):
    book_id: Literal["OL1W"]  # the service documents any string


class Flattened(msgspec.Struct):
    authors: str  # the service sends an array


DRIFTS = {
    Renamed: ["Renamed.name: not in the documented answer"],
    Retyped: ["Retyped.rating_count: contract ['number'], documented ['integer']",
              "Retyped.cover_id: contract ['integer'], documented ['integer', 'null']"],
    SometimesSent: ["SometimesSent.original_title: required by the contract, but the service does not always "
                    "send it (give it a default)"],
    Nested: ["Nested.authors[].name: contract ['integer'], documented ['string']",
             "Nested.ratings_distribution[]: contract ['string'], documented ['integer']"],
    Narrowed: ["Narrowed.book_id: contract [\"one of ['OL1W']\"], documented ['string']"],
    Flattened: ["Flattened.authors: contract ['string'], documented []",
                "Flattened.authors: only the documented answer has an array"],
}


@pytest.mark.parametrize("drifted", DRIFTS, ids=[s.__name__ for s in DRIFTS])
def test_a_drifted_contract_is_caught_naming_the_field(drifted):
    assert compare(drifted, "bookdetail", "GET", "/books/{book_id}").problems == DRIFTS[drifted]


@get("/refused")
async def refused() -> None:
    raise ValidationFailed("refused", errors=[])


async def test_problem_matches_what_the_common_error_handler_answers():
    """No route documents its errors, so Problem is held to the answers of the handler every service uses."""
    app = create_service_app(ServiceSettings(service_name="contract-test", access_log=False), [refused])
    async with AsyncTestClient(app) as client:
        answers = [await client.get("/nowhere"), await client.get("/refused"),
                   await client.delete("/refused")]
    fields = {f.encode_name for f in msgspec.inspect.type_info(contract.Problem).fields}
    for answer in answers:
        assert answer.headers["content-type"].startswith("application/problem+json")
        body = json.loads(answer.content)
        assert fields <= set(body), f"{answer.status_code}: {sorted(fields - set(body))} missing"
        problem = msgspec.json.decode(answer.content, type=contract.Problem, strict=True)
        assert problem.status == answer.status_code
    assert [a.status_code for a in answers] == [404, 400, 405]
