"""The README's "Then try" block, run as written against the end-to-end stack: every command answers as the
README says it does (a README command that fails is a broken product, whatever else passes)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
MARK = "@@command"


def readme_block() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"Then try:\n\n```bash\n(.*?)\n```", text, re.S)
    assert block, "README.md has no 'Then try:' bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def run_block(lines: list[str], alb: str, state_dir: Path) -> list[tuple[str, int | None, str]]:
    """(command, HTTP status of its curl or None, what it printed) for each line, run in one shell in order."""
    script = ['curl() { command curl -w "%{stderr}@@status %{http_code}\\n" "$@"; }']
    for number, line in enumerate(lines):
        script += [f'echo "{MARK} {number}"', line.replace("localhost:8080", alb), "echo"]
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(script)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "BOOKREC_STATE_DIR": str(state_dir)})
    assert done.returncode == 0, done.stderr[-3000:]
    printed = re.split(rf"^{MARK} \d+\n", done.stdout, flags=re.M)[1:]
    statuses = iter(int(s) for s in re.findall(r"^@@status (\d+)$", done.stderr, re.M))
    return [(line, next(statuses) if line.lstrip().startswith("curl") else None, out.strip())
            for line, out in zip(lines, printed, strict=True)]


def test_the_readme_examples_answer_as_the_readme_says(local_stack):
    alb = local_stack.alb_url.removeprefix("http://")
    results = run_block(readme_block(), alb, local_stack.state_dir)
    by_command = {command.split("#")[0].strip(): (status, out) for command, status, out in results}

    def answer(fragment: str) -> tuple[int | None, object]:
        (status, out), = [v for k, v in by_command.items() if fragment in k]
        return status, json.loads(out) if out.startswith(("{", "[")) else out

    status, book = answer("/books/OL827357W |")
    assert status == 200 and book["book_id"] == "OL827357W" and book["title"]
    status, batch = answer("/books/batch")
    assert status == 200 and [b["book_id"] for b in batch["items"]] == ["OL827357W", "GB1"]
    assert batch["missing"] == ["OL999W"]
    status, found = answer("zen+motorcycle")
    assert status == 200 and "zen" in found["items"][0]["title"].lower()
    status, completions = answer("autocomplete?q=medit")
    assert status == 200 and completions["items"][0]["title"].lower().startswith("medit")
    status, reader = answer("/recommendations/gb-58")
    assert status == 200 and reader["strategy"] == "collaborative" and len(reader["recommendations"]) == 5
    status, rated = answer("/rate")
    assert status in (200, 201) and rated["rating"] == 5  # 201 new, 200 again (a second run on one stack)
    status, alice = answer("/recommendations/$ALICE?limit=5")
    assert status == 200 and alice["user_id"] not in ("", "$ALICE") and alice["recommendations"]
    assert all(r["book_id"] != "OL827357W" for r in alice["recommendations"])
    status, similar = answer("/books/GB1/similar?limit")
    assert status == 200 and similar["book_id"] == "GB1" and len(similar["items"]) == 5
    assert similar["items"][0]["book_id"] == "GB17" and "next in The Hunger Games, #2" in similar["items"][0]["reason"]
    assert "GB1" not in [item["book_id"] for item in similar["items"]]
    status, for_reader = answer("similar?user_id=gb-58")
    assert status == 200 and for_reader["user_id"] == "gb-58" and for_reader["source"] in ("cache", "computed")
    assert len(for_reader["items"]) == 5 and for_reader["items"][0] == similar["items"][0]  # the series' next leads
    status, trending = answer("/trending?window=week")
    assert status == 200 and trending["window"] == "week" and len(trending["items"]) == 5
    assert all(item["events"] > 0 and item["title"] for item in trending["items"])
    status, shelved = answer("/books/GB17/shelf")
    assert status in (200, 201) and shelved["shelf"] == "want_to_read" and shelved["user_id"] == alice["user_id"]
    status, shelf = answer("/shelves/want_to_read")
    assert status == 200 and "GB17" in [item["book_id"] for item in shelf["items"]]
    assert all(item["title"] for item in shelf["items"])
    status, scoped = answer("subject=fantasy")
    assert status == 200 and scoped["recommendations"]
    assert not {"OL827357W", "GB17", "GB2"} & {r["book_id"] for r in scoped["recommendations"]}
    assert all(200 <= status < 300 for _, status, _ in results if status is not None)
