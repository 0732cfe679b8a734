"""ALB listener-rule semantics, as pure functions over routes.json.

Rules are evaluated in ascending priority; the first rule with a matching
path pattern wins; otherwise the listener's default action applies. Path
patterns are case-sensitive, `*` matches any run of characters (`/`
included) and `?` exactly one; they match the path only, never the query, and
the path as the client sent it: no percent-decoding, no removal of `//`, `/./`
or `/../` (the real ALB normalises nothing either).

A rule forwards to a service, answers a fixed response, or serves a static
site: `"static": "web"` names a folder of the repository (the page), whose
files the local ALB answers itself and CloudFront takes from S3 on AWS. A
static rule's patterns are exact paths ending in '/' (the folder's index.html)
or prefixes ending in '/*' (the folder's files under that prefix).

The local ALB (HAProxy, configured by tooling/bookrec_local/haproxy.py) runs
these rules as generated `path_reg` ACLs; `Router` is the same semantics in
Python, the oracle the generated configuration is tested against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FixedResponse:
    status_code: int
    reason: str


@dataclass(frozen=True)
class Rule:
    priority: int
    path_patterns: tuple[str, ...]
    service: str | None = None
    fixed_response: FixedResponse | None = None
    static: str | None = None  # a folder of the repository served as files (the page)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", re.compile("|".join(f"(?:{pattern_to_regex(p)})"
                                                               for p in self.path_patterns)))

    def matches(self, path: str) -> bool:
        return self._regex.fullmatch(path) is not None


# Kept as they are in a regex; regex metacharacters get a backslash, anything else becomes \xHH, which
# Python's re and HAProxy's PCRE read alike and which needs no quoting in a configuration file.
_LITERAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-_~:@,=")
_METACHARACTERS = frozenset(".^$|()[]{}+\\")


def _literal(ch: str) -> str:
    if ch in _LITERAL:
        return ch
    if ch in _METACHARACTERS:
        return "\\" + ch
    if ord(ch) > 0x7E or ord(ch) < 0x21:
        raise ValueError(f"ALB path patterns are printable ASCII, not {ch!r}")
    return f"\\x{ord(ch):02x}"


def pattern_to_regex(pattern: str) -> str:
    """The regex (unanchored) of one ALB path pattern: '*' any run of characters, '?' exactly one."""
    return "".join(".*" if ch == "*" else "." if ch == "?" else _literal(ch) for ch in pattern)


def static_prefix(pattern: str) -> tuple[str, bool]:
    """A static rule's pattern as (path, is_prefix): '/' serves the folder's index.html at that exact path,
    '/web/*' every file of the folder under '/web/'."""
    if pattern.endswith("/*") and "*" not in pattern[:-1] and "?" not in pattern:
        return pattern[:-1], True
    if pattern.endswith("/") and "*" not in pattern and "?" not in pattern:
        return pattern, False
    raise ValueError(f"static pattern {pattern!r}: an exact path ending in '/' (the folder's index.html) or "
                     "a prefix ending in '/*' (its files)")


@dataclass(frozen=True)
class Router:
    rules: tuple[Rule, ...]
    default: FixedResponse

    def route(self, path: str) -> Rule | FixedResponse:
        for rule in self.rules:
            if rule.matches(path):
                return rule
        return self.default


def build_router(routes: dict[str, Any]) -> Router:
    rules = []
    for spec in routes["rules"]:
        fixed = spec.get("fixed_response")
        rules.append(Rule(
            priority=int(spec["priority"]),
            path_patterns=tuple(spec["path_patterns"]),
            service=spec.get("service"),
            fixed_response=FixedResponse(int(fixed["status_code"]), fixed["reason"]) if fixed else None,
            static=spec.get("static"),
        ))
    priorities = [r.priority for r in rules]
    if len(set(priorities)) != len(priorities):
        raise ValueError("two ALB rules share a priority")
    for rule in rules:
        actions = [a for a in (rule.service, rule.fixed_response, rule.static) if a is not None]
        if len(actions) != 1:
            raise ValueError(f"rule {rule.priority} must do one thing: forward to a service, answer a fixed "
                             "response or serve a static folder")
        if rule.static is not None:
            for pattern in rule.path_patterns:
                static_prefix(pattern)
    default = routes["default"]
    return Router(tuple(sorted(rules, key=lambda r: r.priority)),
                  FixedResponse(int(default["status_code"]), default["reason"]))
