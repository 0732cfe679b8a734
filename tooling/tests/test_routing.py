"""ALB rule semantics over routes.json (the oracle the generated HAProxy configuration is checked
against): every contract route and the tricky ones."""

import pytest

from bookrec_local import definitions
from bookrec_local.routing import FixedResponse, Rule, build_router, pattern_to_regex

ROUTER = build_router(definitions.routes())


def target(path: str) -> str:
    decision = ROUTER.route(path)
    if isinstance(decision, FixedResponse):
        return f"default:{decision.status_code}"
    if decision.fixed_response:
        return f"fixed:{decision.fixed_response.status_code}"
    if decision.static:
        return f"static:{decision.static}"
    return decision.service


@pytest.mark.parametrize("path, expected", [
    ("/search", "search"),
    ("/search/advanced", "search"),
    ("/search/shard/ab", "search"),
    ("/search/autocomplete", "search"),
    ("/books/OL45883W", "bookdetail"),
    ("/books/batch", "bookdetail"),
    ("/books/OL45883W/rate", "ratings"),
    ("/books/OL45883W/ratings", "ratings"),
    ("/books/OL45883W/ratings/alice", "ratings"),
    ("/users/alice/ratings", "ratings"),
    ("/recommendations/alice", "recommendation"),
    ("/recommendations/refresh", "recommendation"),
    ("/recommendations/invalidate/alice", "fixed:404"),
    ("/recommendations/invalidate", "fixed:404"),
    # tricky: '*' spans '/', so rule order decides
    ("/books/batch/ratings", "ratings"),
    ("/books/a/b/c/ratings", "ratings"),
    ("/books/OL1W/ratingsX", "bookdetail"),
    ("/books/", "bookdetail"),
    # case-sensitive, no partial matches, query ignored by the router's caller
    ("/Books/OL1W", "default:404"),
    ("/SEARCH", "default:404"),
    ("/searching", "default:404"),
    ("/books", "default:404"),
    ("/users/alice", "default:404"),
    ("/users/alice/ratings/x", "default:404"),
    ("/recommendations", "default:404"),
    ("/health", "default:404"),
    ("/metrics", "default:404"),
    ("", "default:404"),
    # the page: exactly / and what is under /web/, nothing else
    ("/", "static:web"),
    ("/web/app/main.js", "static:web"),
    ("/web/", "static:web"),
    ("/web", "default:404"),
    ("/webx/app.js", "default:404"),
    ("/index.html", "default:404"),
    ("/nope", "default:404"),
    ("//", "default:404"),
])
def test_contract_paths_route_to_their_owner(path, expected):
    assert target(path) == expected


# Spellings of the internal invalidate path that a server may resolve to the endpoint: the real ALB
# neither decodes nor normalises, so routes.json itself must catch every one of them.
INVALIDATE_VARIANTS = [
    "/recommendations/invalidate/x",
    "/recommendations/invalidate",
    "/recommendations/invalidate/",
    "/recommendations/invalidate/x/",
    "/recommendations//invalidate/x",
    "/recommendations/invalidate//x",
    "/recommendations/./invalidate/x",
    "/recommendations/x/../invalidate/x",
    "/recommendations/%69nvalidate/x",
    "/recommendations/invalidat%65/x",
    "/recommendations/invalidate%2Fx",
    "/recommendations%2Finvalidate%2Fx",
    "/recommendations/%2E/invalidate/x",
]


@pytest.mark.parametrize("path", INVALIDATE_VARIANTS)
def test_every_spelling_of_the_internal_endpoint_ends_at_the_alb(path):
    assert target(path) == "fixed:404"


@pytest.mark.parametrize("pattern, path, matches", [
    ("/a?c", "/abc", True),
    ("/a?c", "/ac", False),
    ("/a?c", "/a/c", True),
    ("/a*", "/a", True),
    ("/a.b", "/axb", False),   # '.' is literal
    ("/a+b", "/a+b", True),    # regex metacharacters are literal
    ("/x/*/y", "/x//y", True),
])
def test_pattern_semantics(pattern, path, matches):
    assert (Rule(1, (pattern,), service="s").matches(path)) is matches
    assert pattern_to_regex(pattern)


def test_rules_are_evaluated_by_priority_not_file_order():
    router = build_router({"rules": [
        {"priority": 20, "path_patterns": ["/books/*"], "service": "bookdetail"},
        {"priority": 10, "path_patterns": ["/books/batch"], "service": "batch"},
    ], "default": {"status_code": 404, "reason": "none"}})
    assert router.route("/books/batch").service == "batch"


@pytest.mark.parametrize("rules", [
    [{"priority": 1, "path_patterns": ["/a"], "service": "s"},
     {"priority": 1, "path_patterns": ["/b"], "service": "s"}],
    [{"priority": 1, "path_patterns": ["/a"]}],
    [{"priority": 1, "path_patterns": ["/a/*"], "service": "s", "static": "web"}],
    [{"priority": 1, "path_patterns": ["/web*"], "static": "web"}],
    [{"priority": 1, "path_patterns": ["/web/*/x"], "static": "web"}],
    [{"priority": 1, "path_patterns": ["/index.html"], "static": "web"}],
])
def test_invalid_rule_sets_are_refused(rules):
    with pytest.raises(ValueError, match=r"priority|do one thing|static pattern"):
        build_router({"rules": rules, "default": {"status_code": 404, "reason": "x"}})


def test_every_forwarded_service_exists_in_services_json():
    services = set(definitions.services())
    assert {r.service for r in ROUTER.rules if r.service} == services


def test_the_page_is_one_static_rule_after_every_api_rule():
    """The API rules stay as they were; the page only adds '/' and '/web/*', which no API path matches."""
    (page,) = [r for r in ROUTER.rules if r.static]
    assert page.static == "web" and page.path_patterns == ("/", "/web/*")
    assert page.priority > max(r.priority for r in ROUTER.rules if not r.static)
    api = [r for r in ROUTER.rules if not r.static]
    assert not any(r.matches(p) for r in api for p in ("/", "/web/", "/web/app/main.js"))
