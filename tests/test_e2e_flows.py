"""User journeys across services, through the local ALB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from bookrec_local.identity import bearer
from bookrec_local.procs import LOCAL_AWS_ENV

pytestmark = pytest.mark.e2e


def test_a_rating_invalidates_recommendations_and_the_rated_book_is_excluded(alb, stack_user):
    reader = stack_user("e2e-reader")
    user, auth = reader["sub"], bearer(reader)
    # Two ratings: the user now has recommendations (cached after the first read).
    for book in ("GB1", "GB2"):
        assert alb.post(f"/books/{book}/rate", json={"rating": 5}, headers=auth).status_code in (200, 201)
    first = alb.get(f"/recommendations/{user}", params={"limit": 20}).json()
    assert alb.get(f"/recommendations/{user}", params={"limit": 20}).json()["source"] == "cache"
    target = first["recommendations"][0]["book_id"]
    rated = alb.post(f"/books/{target}/rate", json={"user_id": user, "rating": 4}, headers=auth)
    assert rated.status_code == 201, rated.text
    after = alb.get(f"/recommendations/{user}", params={"limit": 20}).json()
    assert after["source"] == "computed"
    assert target not in {r["book_id"] for r in after["recommendations"]}
    assert {"GB1", "GB2"}.isdisjoint(r["book_id"] for r in after["recommendations"])


def test_a_rating_moves_the_books_aggregate_seen_by_details_and_ratings(alb, stack_user):
    rater = stack_user("e2e-aggregate")
    user = rater["sub"]
    before = alb.get("/books/GB3").json()
    r = alb.post("/books/GB3/rate", json={"rating": 1}, headers=bearer(rater))
    assert r.status_code == 201 and r.json()["user_id"] == user
    after = alb.get("/books/GB3").json()
    assert after["rating_count"] == before["rating_count"] + 1
    assert after["ratings_distribution"]["1"] == before["ratings_distribution"]["1"] + 1
    listing = alb.get("/books/GB3/ratings", params={"limit": 1}).json()
    assert listing["total_ratings"] == after["rating_count"]
    assert listing["ratings"][0]["user_id"] == user  # newest first
    mine = alb.get(f"/users/{user}/ratings").json()
    assert [x["book_id"] for x in mine["ratings"]] == ["GB3"]


def test_search_then_details_then_batch(alb):
    found = alb.get("/search", params={"q": "zen motorcycle"}).json()
    assert found["items"][0]["title"] == "Zen and the Art of Motorcycle Maintenance"
    ids = [i["book_id"] for i in alb.post("/search", json={"query": "philosophy", "limit": 5}).json()["items"]]
    assert len(ids) == 5
    batch = alb.post("/books/batch", json={"book_ids": ids}).json()
    assert [b["book_id"] for b in batch["items"]] == ids and batch["missing"] == []
    typed = alb.get("/search/autocomplete", params={"q": "zen and"}).json()
    assert any(i["title"].startswith("Zen and the Art") for i in typed["items"])


def test_readers_find_books_in_their_own_script_with_typos_and_by_isbn(alb):
    """The seeded catalogue through the ALB: original titles, CJK parts, a typo, an ISBN, facets."""
    def first(query: str, **extra) -> dict:
        body = alb.get("/search", params={"q": query, **extra}).json()
        return body["items"][0] | {"response": body}

    assert first("Война и мир")["title"] == "War and Peace"
    assert first("ノルウェイの森")["title"].startswith("Norwegian Wood")
    assert first("Ὀδύσσεια")["title"] == "The Odyssey"
    typo = first("hobbti")  # a transposition: one edit
    assert typo["title"].startswith("The Hobbit") and typo["response"]["corrections"][0]["word"] == "hobbti"
    by_isbn = first("978-0-439-55493-0", highlight="true")
    assert by_isbn["title"].startswith("Harry Potter and the Sorcerer")
    faceted = alb.post("/search", json={"query": "harry potter", "facets": True, "highlight": True}).json()
    assert faceted["facets"]["authors"][0]["value"] == "J.K. Rowling"
    assert faceted["facets"]["authors"][0]["count"] >= 7
    top = faceted["items"][0]
    assert [top["title"][s:e].lower() for s, e in top["highlights"]["title"]][:2] == ["harry", "potter"]
    typed = alb.get("/search/autocomplete", params={"q": "الفيل"}).json()
    assert typed["source"] == "index" and typed["items"][0]["title"] == "الفيل الأزرق"


def test_writes_and_admin_need_the_right_token_through_the_alb(alb, stack_user):
    alice, bob, admin = stack_user("e2e-alice"), stack_user("e2e-bob"), stack_user("e2e-admin", admin=True)
    before = alb.get("/books/GB4").json()["rating_count"]
    refused = [
        (alb.post("/books/GB4/rate", json={"rating": 5}), 401),
        (alb.post("/books/GB4/rate", json={"rating": 5}, headers={"Authorization": "Bearer x.y.z"}), 401),
        (alb.post("/books/GB4/rate", json={"user_id": bob["sub"], "rating": 5}, headers=bearer(alice)), 403),
        (alb.delete(f"/books/GB4/ratings/{bob['sub']}", headers=bearer(alice)), 403),
        (alb.post("/recommendations/refresh"), 401),
        (alb.post("/recommendations/refresh", headers=bearer(alice)), 403),
    ]
    for r, status in refused:
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert alb.get("/books/GB4").json()["rating_count"] == before  # nothing changed
    accepted = alb.post("/recommendations/refresh", headers=bearer(admin))
    assert accepted.status_code == 202, accepted.text
    own = alb.delete(f"/books/GB4/ratings/{alice['sub']}", headers=bearer(alice))
    assert own.status_code == 404 and own.json()["code"] == "rating_not_found"  # allowed, just nothing there


def etl(stack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The ETL's command line against the stack's tables, as an operator runs it."""
    env = {**os.environ, **LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": stack.aws_endpoint,
           "BOOKS_TABLE": stack.env["BOOKS_TABLE"], "RATINGS_TABLE": stack.env["RATINGS_TABLE"]}
    return subprocess.run([sys.executable, "-m", "bookrec_etl", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def eventually(check, seconds: float = 90.0):
    """Within the builders' and replicas' periods (feed every 30 s), the condition holds."""
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, "never happened"
        time.sleep(1)
    return result


def test_an_added_then_deleted_book_reaches_search_through_the_change_feed(local_stack, alb, tmp_path):
    title = "Zzyzx Quarterly Almanac of Feed Propagation"
    books = tmp_path / "books.jsonl"
    books.write_text(json.dumps({"book_id": "OL999999991W", "title": title, "first_publish_year": 2026}) + "\n")
    loaded = etl(local_stack, "load", str(books))
    assert loaded.returncode == 0, loaded.stderr

    def found() -> bool:
        items = alb.get("/search", params={"q": title}).json()["items"]
        return any(i["book_id"] == "OL999999991W" for i in items)

    def suggested() -> bool:
        items = alb.get("/search/autocomplete", params={"q": "zzyzx quarterly"}).json()["items"]
        return any(i["book_id"] == "OL999999991W" for i in items)

    eventually(lambda: found() and suggested())
    deleted = etl(local_stack, "delete", "OL999999991W")
    assert deleted.returncode == 0 and "deleted 1" in deleted.stdout + deleted.stderr
    eventually(lambda: not found() and not suggested())
    assert alb.get("/books/OL999999991W").status_code == 404


def test_no_recommendation_replica_serves_the_book_just_rated(local_stack, alb, stack_user):
    replicas = local_stack.service_urls("recommendation")
    assert len(replicas) == 2
    reader = stack_user("e2e-two-replicas")
    user, auth = reader["sub"], bearer(reader)
    for book in ("GB4", "GB5", "GB6"):
        assert alb.post(f"/books/{book}/rate", json={"rating": 5}, headers=auth).status_code == 201
    # Each replica answers (and the cache holds) a list; the first book of it is rated next.
    lists = [httpx.get(f"{url}/recommendations/{user}", params={"limit": 20}, timeout=30).json()
             for url in replicas]
    target = lists[0]["recommendations"][0]["book_id"]
    assert alb.post(f"/books/{target}/rate", json={"rating": 2}, headers=auth).status_code == 201
    for url in replicas:
        for _ in range(3):
            body = httpx.get(f"{url}/recommendations/{user}", params={"limit": 20}, timeout=30).json()
            assert target not in {r["book_id"] for r in body["recommendations"]}, (url, body["source"])
    versions = {httpx.get(f"{url}/ready", timeout=30).json()["checks"]["model"]["artifact_version"]
                for url in replicas}
    assert all(isinstance(v, int) and v >= 1 for v in versions)
