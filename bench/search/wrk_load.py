"""Search through a running stack under wrk: POST /search and GET /search/autocomplete (`--http URL`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request

import numpy as np


def discover(base: str) -> list[str]:
    """Titles of the running service's catalogue, through its own autocomplete."""
    found: dict[str, None] = {}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        url = f"{base}/search/autocomplete?q={letter}&limit=50"
        with urllib.request.urlopen(url, timeout=10) as response:
            found.update((item["title"], None) for item in json.load(response)["items"])
    return list(found)


def wrk(url: str, lua: str, duration: int, connections: int) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(lua)
        script.flush()
        command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name, url]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def wrk_figures(out: str) -> str:
    def found(pattern: str) -> str:
        match = re.search(pattern, out, re.MULTILINE)
        return match.group(1) if match else "?"

    rate, p50 = found(r"^Requests/sec:\s+([\d.]+)"), found(r"^\s+50%\s+(\S+)")
    p99, errors = found(r"^\s+99%\s+(\S+)"), found(r"Non-2xx or 3xx responses: (\d+)")
    return f"{rate} requests/s, p50 {p50}, p99 {p99}, non-2xx {'0' if errors == '?' else errors}"


def http(base: str, duration: int, connections: int) -> None:
    """POST /search and GET /search/autocomplete under wrk, through whatever `base` is (the local ALB)."""
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk): HTTP figures skipped")
        return
    titles = discover(base)
    words = sorted({w for t in titles for w in t.split() if len(w) > 3})
    rng = np.random.default_rng(3)
    queries = ([titles[int(i)] for i in rng.integers(len(titles), size=100)]
               + [words[int(i)] for i in rng.integers(len(words), size=100)]
               + [f"{words[int(i)]} {words[int(j)]}" for i, j in rng.integers(len(words), size=(100, 2))])
    bodies = [json.dumps({"query": q, "limit": 20}) for q in queries]
    prefixes = [urllib.parse.quote(t.lower()[:k]) for t in titles[:300] for k in (1, 3, 6)]
    search_lua = (f"local bodies = {{{', '.join(json.dumps(b) for b in bodies)}}}\n"
                  "local i = 0\nrequest = function()\n  i = i + 1\n"
                  '  return wrk.format("POST", "/search", {["Content-Type"] = "application/json"}, '
                  "bodies[i % #bodies + 1])\nend\n")
    paths = [json.dumps(f"/search/autocomplete?q={p}&limit=10") for p in prefixes]
    prefix_lua = (f"local paths = {{{', '.join(paths)}}}\n"
                  "local i = 0\nrequest = function()\n  i = i + 1\n"
                  '  return wrk.format("GET", paths[i % #paths + 1])\nend\n')
    print(f"HTTP through {base} ({len(titles)} titles discovered; wrk, 2 threads, {connections} connections, "
          f"{duration} s; load average {os.getloadavg()[0]:.1f})")
    searching = wrk_figures(wrk(base, search_lua, duration, connections))
    print(f"  POST /search, {len(bodies)} queries: {searching}")
    print(f"  GET /search/autocomplete, {len(prefixes)} prefixes: "
          f"{wrk_figures(wrk(base, prefix_lua, duration, connections))}")

