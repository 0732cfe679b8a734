"""The reader's page in a real browser: Debian's chromium driven by Playwright, against the session's local
stack through its ALB (HAProxy serving web/ beside the API, the emulator's Cognito behind /auth/).

Every test's page fails it on a console error or an uncaught exception; the only messages let through are
cover images from other origins failing to load (the machine may have no network: the page shows its
placeholder instead) and the failed requests a test makes on purpose (a wrong password, an unknown book),
which it names. The figures (first load's transferred bytes, keystroke to rendered results) are
printed by `test_first_load_size_and_keystroke_to_results` (`pytest -s` shows them).
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (make deps)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: make deps installs Debian's chromium "
                                                "(tooling/ensure-system-deps.sh), or apt-get install chromium"),
]

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_VERSION = "4.14.1"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
FIRST_LOAD_BUDGET = 100_000  # bytes transferred by the first load, covers aside
PASSWORD = "Local-dev-0nly!"  # bookrec_local.identity.DEV_PASSWORD: the emulator's users only


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with playwright_sync.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Problems:
    """Console errors and uncaught exceptions of one page, cover images from elsewhere aside."""

    def __init__(self, origin: str, expected_failures: tuple[str, ...]) -> None:
        self.origin = origin
        self.expected = tuple(origin + path for path in expected_failures)
        self.seen: list[str] = []

    def console(self, message) -> None:
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        if message.text.startswith("Failed to load resource") and url and not url.startswith(self.origin):
            return  # a cover from covers.openlibrary.org (or a source's image host) out of reach
        if message.text.startswith("Failed to load resource") and url in self.expected:
            return  # the test's own bad input, answered as it should be
        self.seen.append(f"console: {message.text} ({url})")


@pytest.fixture
def open_page(browser, stack: str) -> Iterator[Callable]:
    """open_page(path="/", viewport=DESKTOP, expected_failures=(), **context options) -> a Playwright page at
    stack + path; after the test, any console error or uncaught exception on it fails the test, but for the
    failed loads of `expected_failures` (paths the test asks for to see them fail)."""
    contexts, problems = [], []

    def open_(path: str = "/", viewport: dict | None = None, expected_failures: tuple[str, ...] = (), **options):
        context = browser.new_context(viewport=viewport or DESKTOP, **options)
        contexts.append(context)
        page = context.new_page()
        seen = Problems(stack, expected_failures)
        problems.append(seen)
        page.on("console", seen.console)
        page.on("pageerror", lambda error: seen.seen.append(f"pageerror: {error}"))
        page.goto(stack + path)
        return page

    yield open_
    for context in contexts:
        context.close()
    errors = [line for seen in problems for line in seen.seen]
    assert not errors, "\n".join(errors)


def results(page) -> list[dict]:
    """The rendered results: each one's title, its highlighted parts and its book id."""
    return page.eval_on_selector_all("#results a", """links => links.map(a => ({
        title: a.querySelector('.title').textContent,
        marks: [...a.querySelectorAll('.title mark')].map(m => m.textContent),
        book: new URL(a.href).searchParams.get('book')}))""")


def type_query(page, text: str) -> None:
    page.fill("#q", "")
    page.locator("#q").press_sequentially(text, delay=40)
    page.wait_for_selector(f"section.search-results[data-query={json.dumps(text, ensure_ascii=False)}]")


def test_a_misspelt_title_finds_the_book_first_with_its_highlight(open_page, stack):
    page = open_page()
    type_query(page, "harry poter")
    first = results(page)[0]
    assert "Harry Potter" in first["title"]
    assert [m.lower() for m in first["marks"]] == ["harry", "potter"]
    assert "Showing results for" in page.inner_text(".corrections")
    assert "potter" in page.inner_text(".corrections strong").lower()
    assert page.url == f"{stack}/?q=harry+poter"


def test_a_cyrillic_title_on_a_phone(open_page):
    page = open_page(viewport=PHONE)
    type_query(page, "горе от ума")
    first = results(page)[0]
    assert first["title"] == "Горе от ума" and first["marks"] == ["Горе", "от", "ума"]
    # Nothing wider than the phone: no sideways scrolling, and the search box takes the width.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator("#q").bounding_box()["width"] > 250
    # A Russian title typed finds the book known by its English title too (its original title).
    type_query(page, "мастер и маргарита")
    assert results(page)[0]["title"] == "The Master and Margarita"


def test_a_book_opens_from_the_keyboard_alone(open_page):
    page = open_page()
    focused = []
    for _ in range(3):  # skip link, home link, search box
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || document.activeElement.className"))
    assert focused[-1] == "q"
    page.keyboard.type("dune", delay=40)
    page.wait_for_selector('section.search-results[data-query="dune"]')
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    second = results(page)[1]
    assert page.evaluate("new URL(document.activeElement.href).searchParams.get('book')") == second["book"]
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "the focused result shows no focus outline"
    page.keyboard.press("ArrowUp")
    assert page.evaluate("new URL(document.activeElement.href).searchParams.get('book')") == results(page)[0]["book"]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector(f'article.book[data-book="{second["book"]}"]')
    assert page.inner_text("#book-title") == second["title"]
    assert f"book={second['book']}" in page.url


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    page.click("#sign-in")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#sign-in-form button[type=submit]")


def for_you(page) -> list[str]:
    page.wait_for_selector("#for-you-heading ~ * ol, #for-you-heading ~ .empty, #for-you-heading ~ div .empty")
    return page.eval_on_selector_all('ol[aria-label="For you"] a',
                                     "links => links.map(a => new URL(a.href).searchParams.get('book'))")


def shelf(page, name: str) -> list[str]:
    page.wait_for_selector("#shelves-heading")
    page.wait_for_function(f"() => !document.querySelector('#shelf-{name}').nextElementSibling"
                           ".classList.contains('loading')")
    return page.eval_on_selector_all(f"#shelf-{name} + div a",
                                     "links => links.map(a => new URL(a.href).searchParams.get('book'))")


def test_sign_in_rate_shelve_and_the_rated_book_leaves_for_you(open_page, stack_user, stack):
    username = f"reader-{uuid.uuid4().hex[:8]}"
    stack_user(username)  # a user of the stack's Cognito pool, with the local password
    page = open_page(expected_failures=("/auth/",))
    sign_in(page, username, "not-the-password")
    page.wait_for_selector("#sign-in-form .error:has-text('Incorrect username or password.')")
    page.fill("#password", PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#sign-out")
    assert username in page.inner_text("#account")
    stored = json.loads(page.evaluate("sessionStorage.getItem('bookrec.session')"))
    assert stored["username"] == username and stored["access_token"].count(".") == 2
    assert page.evaluate("localStorage.length") == 0 and "token" not in page.url
    picks = for_you(page)
    assert len(picks) >= 2
    rated, shelved = picks[0], picks[1]

    page.click(f'ol[aria-label="For you"] a[href="/?book={rated}"]')
    page.wait_for_selector(f'article.book[data-book="{rated}"] .rate')
    page.click("button[aria-label='Rate 5 stars']")
    page.wait_for_function("() => document.querySelector('.mine .note').textContent.includes('You rated')")
    assert page.get_attribute("button[aria-label='Rate 5 stars']", "aria-pressed") == "true"

    page.goto(f"{stack}/?book={shelved}")
    page.wait_for_selector(f'article.book[data-book="{shelved}"] .shelve')
    page.select_option("#shelf-choice", "want_to_read")
    page.click(".shelve button[type=submit]")
    page.wait_for_function("() => document.querySelector('.mine .note').textContent.includes('Want to read')")

    deadline = time.monotonic() + 30
    while True:  # the recommender drops what a reader rated once the rating is in its reads
        page.goto(stack + "/")
        remaining = for_you(page)
        if (rated not in remaining and shelved not in remaining) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert rated not in remaining and shelved not in remaining
    assert rated in shelf(page, "read")  # rating a book on no shelf puts it on "read"
    assert shelf(page, "want_to_read") == [shelved]

    page.goto(f"{stack}/?book={shelved}")
    page.wait_for_selector(".shelve button:has-text('Remove from shelf'):visible")
    page.click("text=Remove from shelf")
    page.wait_for_function("() => document.querySelector('.mine .note').textContent.includes('Taken off')")
    page.goto(stack + "/")
    assert shelf(page, "want_to_read") == []

    page.click("#sign-out")
    page.wait_for_selector("#sign-in")
    assert page.evaluate("sessionStorage.getItem('bookrec.session')") is None
    assert page.locator("#for-you-heading").count() == 0


def test_similar_books_and_trending_render(open_page, stack):
    page = open_page()
    page.wait_for_selector('ol[aria-label="Trending this week"] li')
    assert page.locator('ol[aria-label="Trending this week"] li').count() >= 3
    page.goto(f"{stack}/?book=GB1")
    page.wait_for_selector('ol[aria-label="Similar books"] li')
    assert page.locator('ol[aria-label="Similar books"] li').count() >= 3
    assert page.inner_text(".next-in-series").startswith("Next in the series:")
    assert page.locator(".distribution tr").count() == 5


def test_deep_links_open_a_search_and_a_book(open_page, stack):
    page = open_page("/?q=zen+motorcycle")
    page.wait_for_selector('section.search-results[data-query="zen motorcycle"]')
    assert page.input_value("#q") == "zen motorcycle"
    assert "Zen" in results(page)[0]["title"]
    book = page.request.get(f"{stack}/books/OL827357W").json()
    page.goto(f"{stack}/?book=OL827357W")
    page.wait_for_selector('article.book[data-book="OL827357W"]')
    assert page.inner_text("#book-title") == book["title"]
    page.go_back()
    page.wait_for_selector('section.search-results[data-query="zen motorcycle"]')


def test_a_missing_book_and_a_facet_filter_say_what_happened(open_page, stack):
    page = open_page("/?book=OL999999999W", expected_failures=("/books/OL999999999W",))
    page.wait_for_selector(".error h1")
    assert page.inner_text(".error h1") == "Book not available"
    page.goto(f"{stack}/?q=harry+potter")
    page.wait_for_selector('section.search-results[data-query="harry potter"] .filters input')
    total = int(page.inner_text("#status").split()[0].replace(",", ""))
    page.locator(".filters fieldset").first.locator("input").first.check()
    page.wait_for_selector('section.search-results[data-query="harry potter"][data-filters="1"]')
    assert "author=" in page.url
    assert 0 < int(page.inner_text("#status").split()[0].replace(",", "")) <= total
    page.goto(f"{stack}/?q=qqqxxzzv")
    page.wait_for_selector(".empty")
    assert "No books match" in page.inner_text(".empty")


@pytest.mark.parametrize("path", ["/", "/?q=harry+potter", "/?book=GB1"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_no_serious_or_critical_accessibility_violations(open_page, path, viewport, stack_user):
    """axe-core (vendored, tests/vendor/axe-core) over the home page, a search and a book, signed in."""
    stack_user("axe-reader")
    page = open_page(path, viewport=viewport, bypass_csp=True)  # axe is injected: the page's CSP allows no inline
    if path == "/":
        sign_in(page, "axe-reader")
        page.wait_for_selector('ol[aria-label="For you"]')
    page.wait_for_load_state("networkidle")
    page.add_script_tag(path=str(AXE))
    assert page.evaluate("axe.version") == AXE_VERSION
    found = page.evaluate("axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => "
                          "({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)})))")
    serious = [v for v in found if v["impact"] in ("serious", "critical")]
    print(f"axe {path} {viewport['width']}px: {[(v['id'], v['impact']) for v in found]}")
    assert not serious


def test_first_load_size_and_keystroke_to_results(open_page, stack):
    page = open_page()
    page.wait_for_selector('ol[aria-label="Trending this week"]')
    page.wait_for_load_state("networkidle")
    origin = urlparse(stack)
    transferred = page.evaluate("""() => {
        const entries = [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')];
        return entries.map(e => ({name: e.name, bytes: e.transferSize, type: e.initiatorType}));
    }""")
    own = [e for e in transferred if urlparse(e["name"]).netloc == origin.netloc]
    total = sum(e["bytes"] for e in own)
    files = sum(e["bytes"] for e in own if "/web/" in e["name"] or urlparse(e["name"]).path == "/")
    print(f"\nfirst load: {total:,} bytes transferred in {len(own)} requests "
          f"({files:,} of them the page's files, the rest API answers), covers aside")
    assert all(e["bytes"] > 0 for e in own), own
    assert total <= FIRST_LOAD_BUDGET

    queries = ["harry potter", "dune", "zen motorcycle", "мастер и маргарита", "philosophy", "tolkien",
               "hunger games", "pride and prejudice", "the hobbit", "1984"]
    durations: list[float] = []
    for query in queries * 2:
        page.evaluate("performance.clearMeasures('keystroke-to-results')")
        type_query(page, query)
        page.wait_for_function("() => performance.getEntriesByName('keystroke-to-results').length > 0")
        durations.append(page.evaluate("performance.getEntriesByName('keystroke-to-results')[0].duration"))
    durations.sort()
    p50 = statistics.median(durations)
    p99 = durations[min(len(durations) - 1, round(0.99 * (len(durations) - 1)))]
    print(f"keystroke to rendered results ({len(durations)} queries typed, 40 ms between keys, 120 ms debounce "
          f"included): p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    assert p50 < 1000


def test_make_screenshots_at_its_smallest_size(local_stack, tmp_path):
    """`make screenshots`' program, one view at one size, against this session's stack: a real PNG as wide
    as the phone."""
    import struct
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bookrec_local.screenshots", "--state-dir", str(local_stack.state_dir),
                           "--views", "search", "--sizes", "phone", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    shot = tmp_path / "search-phone.png"
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (375, 812)
    assert f"wrote {shot}" in done.stdout
