"""The HAProxy configuration generated from routes.json, read as text (no haproxy started)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from bookrec_local import definitions
from bookrec_local.haproxy import (
    CONTENT_TYPES,
    MAX_STATIC_FILE,
    HealthCheck,
    default_targets,
    render_config,
    static_files,
)
from bookrec_local.routing import FixedResponse, build_router

from .test_routing import INVALIDATE_VARIANTS

TARGETS = default_targets()
CONFIG = render_config(definitions.routes(), TARGETS)


def lines(config: str, prefix: str) -> list[str]:
    return [line.strip() for line in config.splitlines() if line.strip().startswith(prefix)]


def acls(config: str) -> dict[str, list[re.Pattern[str]]]:
    """rule name -> its path_reg regexes, compiled with Python's re (the generated ones are valid in both)."""
    out = {}
    for line in lines(config, "acl "):
        name, _, rest = line.removeprefix("acl ").partition(" path_reg ")
        out[name] = [re.compile(r) for r in re.findall(r"'([^']*)'", rest.split("  #")[0])]
    return out


def generated_route(config: str, path: str) -> str:
    """Where the generated frontend sends `path`: http-request return rules first (in order), then the
    first matching use_backend, then the default backend; as routing.Router's decisions are named."""
    rules = {name: any(r.search(path) for r in regexes) for name, regexes in acls(config).items()}

    def holds(condition: str) -> bool:
        return all(not rules[t[1:]] if t.startswith("!") else rules[t] for t in condition.split())

    for line in lines(config, "http-request return"):
        if " if " in line and holds(line.rsplit(" if ", 1)[1]):
            if " file " in line:
                return "static:200"
            return "static:404" if "no such file" in line else f"fixed:{line.split()[3]}"
    for line in lines(config, "use_backend "):
        backend, _, condition = line.removeprefix("use_backend ").partition(" if ")
        if holds(condition):
            return backend
    return "default:404"


def oracle(routes: dict, path: str) -> str:
    decision = build_router(routes).route(path)
    if isinstance(decision, FixedResponse):
        return f"default:{decision.status_code}"
    if decision.fixed_response:
        return f"fixed:{decision.fixed_response.status_code}"
    if decision.static:
        served = {url for pattern in decision.path_patterns
                  for url in static_files(pattern, definitions.ROOT / decision.static)}
        return "static:200" if path in served else "static:404"
    return decision.service


PATHS = ["/search", "/search/advanced", "/searching", "/books/batch", "/books/batch/ratings", "/books/OL1W",
         "/books/OL1W/rate", "/books/a/b/ratings/c", "/books/OL1W/ratingsX", "/users/a/ratings", "/users/a",
         "/recommendations/alice", "/recommendations", "/Books/x", "/health", "/", "/web/index.html",
         "/web/nope.js", "/web", "/nope", "/index.html", *INVALIDATE_VARIANTS]


@pytest.mark.parametrize("path", PATHS)
def test_generated_rules_route_as_the_alb_semantics(path):
    assert generated_route(CONFIG, path) == oracle(definitions.routes(), path)


def test_rules_appear_in_priority_order_not_file_order():
    routes = {"rules": [
        {"priority": 30, "path_patterns": ["/books/*"], "service": "bookdetail"},
        {"priority": 10, "path_patterns": ["/books/batch"], "service": "search"},
        {"priority": 20, "path_patterns": ["/books/x*"], "fixed_response": {"status_code": 403, "reason": "no"}},
    ], "default": {"status_code": 404, "reason": "none"}}
    config = render_config(routes, TARGETS)
    assert list(acls(config)) == ["rule_10", "rule_20", "rule_30"]
    assert lines(config, "use_backend") == ["use_backend search if rule_10", "use_backend bookdetail if rule_30"]
    for path, expected in [("/books/batch", "search"), ("/books/xyz", "fixed:403"), ("/books/a", "bookdetail")]:
        assert generated_route(config, path) == oracle(routes, path) == expected


def test_a_fixed_response_yields_to_a_forwarding_rule_of_lower_priority_number():
    """http-request return runs before use_backend, so the fixed rule must exclude earlier forwards."""
    routes = {"rules": [
        {"priority": 5, "path_patterns": ["/a/public"], "service": "search"},
        {"priority": 10, "path_patterns": ["/a/*"], "fixed_response": {"status_code": 404, "reason": "hidden"}},
    ], "default": {"status_code": 404, "reason": "none"}}
    config = render_config(routes, TARGETS)
    assert lines(config, "http-request return")[0].endswith(" if rule_10 !rule_5")
    assert generated_route(config, "/a/public") == "search"
    assert generated_route(config, "/a/other") == "fixed:404"


@pytest.mark.parametrize("pattern, regex", [
    ("/books/*", "^/books/.*$"),
    ("/a?c", "^/a.c$"),
    ("/a.b", r"^/a\.b$"),
    ("/a+b(c)[d]{e}|f^g$h", r"^/a\+b\(c\)\[d\]\{e\}\|f\^g\$h$"),
    ("/o'brien", r"^/o\x27brien$"),
    ("/100%", r"^/100\x25$"),
    ("/a#b;c", r"^/a\x23b\x3bc$"),
    ('/q"uote&amp', r"^/q\x22uote\x26amp$"),
    ("/back\\slash", r"^/back\\slash$"),
])
def test_patterns_become_anchored_regexes_with_special_characters_escaped(pattern, regex):
    routes = {"rules": [{"priority": 1, "path_patterns": [pattern], "service": "search"}],
              "default": {"status_code": 404, "reason": "none"}}
    acl = lines(render_config(routes, TARGETS), "acl rule_1 ")[0]
    assert f"path_reg '{regex}'" in acl
    literal = pattern.replace("*", "").replace("?", "b")
    assert re.fullmatch(regex[1:-1], literal)  # the pattern's own text matches literally
    if "." in pattern:
        assert not re.fullmatch(regex[1:-1], literal.replace(".", "x"))


@pytest.mark.parametrize("pattern", ["/caf\u00e9", "/a b", "/tab\there", "/new\nline"])
def test_patterns_outside_printable_ascii_are_refused(pattern):
    with pytest.raises(ValueError):
        render_config({"rules": [{"priority": 1, "path_patterns": [pattern], "service": "search"}],
                       "default": {"status_code": 404, "reason": "none"}}, TARGETS)


def problem_of(line: str, path: str = "/x") -> dict:
    """The JSON a `... lf-string '<body>'` line answers for `path` (HAProxy's json converter stood in for)."""
    body = re.search(r"lf-string '(.*)'", line).group(1)
    body = body.replace("%[path,json(utf8s)]", json.dumps(path)[1:-1]).replace("%[be_name]", "svc")
    return json.loads(body.replace("%%", "%"))


def test_fixed_responses_and_the_default_are_problem_details():
    fixed, *_, default = [line for line in lines(CONFIG, "http-request return") if "no_route" in line
                          and "no such file" not in line]
    for line, detail in ((fixed, "internal endpoint: /x"), (default, "no route: /x")):
        assert "status 404 content-type application/problem+json hdr X-Service alb" in line
        assert problem_of(line) == {"type": "urn:bookrec:problem:no_route", "title": "Not found", "status": 404,
                                    "detail": detail, "code": "no_route", "instance": "/x"}
    assert fixed.endswith(" if rule_10")
    assert lines(CONFIG, "default_backend") == ["default_backend no_route"]


def test_a_reason_with_quotes_and_percent_signs_stays_valid_json():
    routes = {"rules": [], "default": {"status_code": 410, "reason": "it's 100% \"gone\""}}
    (line,) = lines(render_config(routes, {}), "http-request return")
    assert "status 410" in line and line.count("'") == 2  # the reason's quote cannot end the argument
    assert problem_of(line)["detail"] == "it's 100% \"gone\": /x"


@pytest.mark.parametrize("status, code", [(502, "bad_gateway"), (503, "service_unavailable"),
                                          (504, "gateway_timeout")])
def test_the_albs_own_errors_are_problem_details(status, code):
    (line,) = [x for x in lines(CONFIG, "http-error") if f"status {status} " in x]
    assert "content-type application/problem+json hdr X-Service alb" in line
    problem = problem_of(line, "/books/1")
    assert (problem["status"], problem["code"], problem["instance"]) == (status, code, "/books/1")


def test_alb_like_timeouts_forwarded_headers_and_health_checked_round_robin():
    config = render_config(definitions.routes(), {**TARGETS, "search": ["127.0.0.1:8001", "127.0.0.1:8011"]},
                           threads=2, health=HealthCheck(interval=15, timeout=5, healthy_threshold=2,
                                                         unhealthy_threshold=3))
    assert lines(config, "nbthread") == ["nbthread 2"]
    for timeout in ("client", "server", "http-keep-alive"):
        assert f"timeout {timeout} 60s" in lines(config, "timeout ")
    assert "timeout connect 10s" in lines(config, "timeout ")
    assert any("X-Forwarded-For" in line and "%[src]" in line for line in lines(config, "http-request set-header"))
    assert "http-request set-header X-Forwarded-Port %[dst_port]" in lines(config, "http-request")
    assert "http-request set-header X-Forwarded-Proto http" in lines(config, "http-request")
    search = config.split("backend search\n", 1)[1].split("\n\n", 1)[0]
    assert "balance roundrobin" in search and "option httpchk GET /health" in search
    assert "default-server check inter 15s fall 3 rise 2 fastinter 500ms downinter 500ms" in search
    assert "timeout check 5s" in search
    assert lines(search, "server ") == ["server search-1 127.0.0.1:8001", "server search-2 127.0.0.1:8011"]
    assert set(re.findall(r"^backend (\S+)", config, re.M)) == {"no_route", *definitions.services()}


def test_every_health_check_asks_the_services_own_health_path():
    for name, spec in definitions.services().items():
        backend = CONFIG.split(f"backend {name}\n", 1)[1].split("\n\n", 1)[0]
        assert f"option httpchk GET {spec['health_path']}" in backend


def test_a_service_without_targets_is_refused():
    with pytest.raises(ValueError, match="ratings"):
        render_config(definitions.routes(), {k: v for k, v in TARGETS.items() if k != "ratings"})


# As docker-compose.yml generates it: the compose service names of every replica as targets.
COMPOSE_CONFIG = render_config(definitions.routes(), {name: [f"{replica}:{spec['port']}"
                                                             for replica in definitions.replica_names(name)]
                                                      for name, spec in definitions.services().items()},
                               bind="0.0.0.0")


def backend(config: str, service: str) -> str:
    return config.split(f"backend {service}\n", 1)[1].split("\n\n", 1)[0]


def test_every_replica_of_services_json_is_a_target_of_its_backend():
    """recommendation runs two tasks (services.json "replicas": 2): two servers, round robin, each checked."""
    assert definitions.replicas("recommendation") == 2
    assert TARGETS["recommendation"] == ["127.0.0.1:8004", "127.0.0.1:8014"]
    assert default_targets(200)["recommendation"] == ["127.0.0.1:8204", "127.0.0.1:8214"]
    recommendation = backend(CONFIG, "recommendation")
    assert "balance roundrobin" in recommendation and "option httpchk GET /health" in recommendation
    assert lines(recommendation, "server ") == ["server recommendation-1 127.0.0.1:8004",
                                                "server recommendation-2 127.0.0.1:8014"]
    assert lines(backend(COMPOSE_CONFIG, "recommendation"), "server ") == [
        "server recommendation-1 recommendation:8004", "server recommendation-2 recommendation-2:8004"]
    for name in set(definitions.services()) - {"recommendation"}:
        assert len(lines(backend(CONFIG, name), "server ")) == definitions.replicas(name) == 1


def test_hostname_targets_are_resolved_and_may_start_down():
    config = COMPOSE_CONFIG
    assert "resolvers system" in config and "parse-resolv-conf" in config
    assert all("resolvers system init-addr last,libc,none" in line for line in lines(config, "default-server"))
    assert "bind 0.0.0.0:8080" in config
    assert "resolvers" not in CONFIG


WEB = definitions.ROOT / "web"
PAGE_FILES = {"/": WEB / "index.html", **{f"/web/{f.relative_to(WEB).as_posix()}": f for f in WEB.rglob("*")
                                          if f.is_file() and f.suffix in CONTENT_TYPES}}


def static_return(config: str, url: str) -> str:
    """The one `http-request return ... file` line that answers `url`."""
    assert generated_route(config, url) == "static:200"
    (line,) = [line for line in lines(config, "http-request return") if " file " in line
               and all(any(r.search(url) for r in acls(config)[c]) for c in line.rsplit(" if ", 1)[1].split()
                       if not c.startswith("!"))]
    return line


def test_the_page_is_served_at_root_and_its_files_under_web():
    assert len([line for line in lines(CONFIG, "http-request return") if " file " in line]) == len(PAGE_FILES) > 2
    for url, file in PAGE_FILES.items():
        line = static_return(CONFIG, url)
        assert line.split(" if ")[0].endswith(f'file "{file}"')
        assert f'content-type "{CONTENT_TYPES[file.suffix]}"' in line
    assert lines(CONFIG, "tune.bufsize") == ["tune.bufsize 65536"]
    # Only the served types: the folder's notes and screenshots are not part of the page.
    assert not [f for f in WEB.rglob("*") if f.suffix in (".md", ".png") and f'"{f}"' in CONFIG]


def test_the_page_has_its_security_headers_and_no_inline_script():
    index = static_return(CONFIG, "/")
    csp = re.search(r'hdr Content-Security-Policy "([^"]*)"', index).group(1)
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert 'hdr X-Content-Type-Options "nosniff"' in index and 'hdr X-Frame-Options "DENY"' in index


def test_a_path_under_the_page_without_a_file_is_the_404_problem():
    assert generated_route(CONFIG, "/web/nope.js") == "static:404"
    (line,) = [line for line in lines(CONFIG, "http-request return") if "no such file" in line]
    assert problem_of(line, "/web/nope.js") == {
        "type": "urn:bookrec:problem:no_route", "title": "Not found", "status": 404,
        "detail": "no such file: /web/nope.js", "code": "no_route", "instance": "/web/nope.js"}


def test_a_static_folder_without_index_or_with_a_bad_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"no index\.html"):
        render_config(definitions.routes(), TARGETS, static_roots={"web": tmp_path})
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "huge.js").write_text("x" * (MAX_STATIC_FILE + 1))
    with pytest.raises(ValueError, match=r"huge\.js is .* split it"):
        render_config(definitions.routes(), TARGETS, static_roots={"web": tmp_path})
    (tmp_path / "huge.js").unlink()
    (tmp_path / "notes.md").write_text("not served")
    with pytest.raises(ValueError, match="none of the served types"):
        render_config(definitions.routes(), TARGETS, static_roots={"web": tmp_path},
                      static_extra={"/web/config.json": tmp_path / "notes.md"})
    config = render_config(definitions.routes(), TARGETS, static_roots={"web": tmp_path})
    assert "notes.md" not in config and f'file "{tmp_path.resolve() / "index.html"}"' in config


def test_generated_files_join_the_page(tmp_path):
    page_config = tmp_path / "config.json"
    page_config.write_text("{}")
    config = render_config(definitions.routes(), TARGETS, static_extra={"/web/config.json": page_config})
    line = static_return(config, "/web/config.json")
    assert f'file "{page_config}" if rule_70 file_70_' in line and 'content-type "application/json"' in line


IDENTITY_CONFIG = render_config(definitions.routes(), TARGETS, identity_endpoint="127.0.0.1:4566")


def test_the_sign_in_route_reaches_only_the_emulators_cognito_and_only_when_asked():
    assert "backend identity" not in CONFIG and "identity" not in "".join(lines(CONFIG, "use_backend"))
    assert "use_backend identity if identity_path identity_post identity_call" in lines(IDENTITY_CONFIG,
                                                                                        "use_backend")
    assert "acl identity_path path_reg '^/auth/$'" in lines(IDENTITY_CONFIG, "acl")
    assert ("acl identity_call req.hdr(X-Amz-Target) -m str AWSCognitoIdentityProviderService.InitiateAuth"
            in lines(IDENTITY_CONFIG, "acl"))
    identity = backend(IDENTITY_CONFIG, "identity")
    assert lines(identity, "server ") == ["server identity-1 127.0.0.1:4566"]
    assert "http-request del-header Authorization" in identity and "http-request set-path /" in identity


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (make deps installs it)")
@pytest.mark.parametrize("config", [CONFIG, COMPOSE_CONFIG, IDENTITY_CONFIG], ids=["stack", "compose", "identity"])
def test_haproxy_accepts_the_generated_configuration(tmp_path, config):
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    result = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_serves_the_page_from_the_volume_the_haproxy_container_reads(tmp_path):
    """docker-compose's generator copies web/ into the shared volume and names the files where the official
    haproxy image mounts it."""
    from bookrec_local.haproxy import main

    out = tmp_path / "haproxy.cfg"
    assert main(["--output", str(out), "--web-dir", str(tmp_path / "web"),
                 "--web-served-from", "/usr/local/etc/haproxy/web"]) == 0
    config = out.read_text()
    files = re.findall(r'file "([^"]+)"', config)
    assert files and all(f.startswith("/usr/local/etc/haproxy/web/") for f in files)
    assert "/usr/local/etc/haproxy/web/index.html" in files and str(tmp_path) not in config
    copied = {f.relative_to(tmp_path / "web").as_posix() for f in (tmp_path / "web").rglob("*") if f.is_file()}
    assert "index.html" in copied and not any(f.startswith("screenshots/") or f.endswith(".md") for f in copied)
