"""ALB listener-rule semantics, as pure functions over routes.json.

Rules are evaluated in ascending priority; the first rule with a matching
path pattern wins; otherwise the listener's default action applies. Path
patterns are case-sensitive, `*` matches any run of characters (`/`
included) and `?` exactly one; they match the path only, never the query, and
the path as the client sent it: no percent-decoding, no removal of `//`, `/./`
or `/../` (the real ALB normalises nothing either).

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
        ))
    priorities = [r.priority for r in rules]
    if len(set(priorities)) != len(priorities):
        raise ValueError("two ALB rules share a priority")
    for rule in rules:
        if (rule.service is None) == (rule.fixed_response is None):
            raise ValueError(f"rule {rule.priority} must either forward to a service or answer a fixed response")
    default = routes["default"]
    return Router(tuple(sorted(rules, key=lambda r: r.priority)),
                  FixedResponse(int(default["status_code"]), default["reason"]))
