"""Screenshots of the reader's page (desktop and phone), for the README: `make screenshots`.

    python -m bookrec_local.screenshots [--views home search book] [--sizes desktop phone] [--out web/screenshots]

Against the stack of `make up` when one runs (BOOKREC_STATE_DIR, default .run/); otherwise it starts one
with the sample catalogue on BOOKREC_PORT_OFFSET (default 0) and stops it afterwards. The home page is
shown signed in (the user `reader`, created in the stack's Cognito pool), so "for you" and the shelves
show. Drives Debian's chromium through Playwright (tooling/ensure-system-deps.sh installs it).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from bookrec_local import definitions
from bookrec_local.identity import DEV_PASSWORD
from bookrec_local.stack import Stack, from_environment

SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 812}}
# view -> (path, the selector that says it has rendered)
VIEWS = {
    "home": ("/", 'ol[aria-label="Trending this week"] li'),
    "search": ("/?q=harry+poter", "#results li"),
    "book": ("/?book=GB1", 'ol[aria-label="Similar books"] li'),
}
READER = "reader"


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    """The running `make up` stack, else one started here (sample catalogue) and stopped afterwards."""
    stack = from_environment()
    if stack.running():
        yield stack
        return
    stack = from_environment(seed="sample")
    stack.up()
    try:
        yield stack
    finally:
        stack.down()


def take(stack: Stack, out: Path, views: list[str], sizes: list[str]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed: make deps (tooling/ensure-system-deps.sh) or apt-get install "
                         "chromium")
    out.mkdir(parents=True, exist_ok=True)
    if "home" in views:
        stack.sign_in(READER)  # creates the user with the local password
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for size in sizes:
            width, height = SIZES[size]["width"], SIZES[size]["height"]
            context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
            page = context.new_page()
            for view in views:
                path, ready = VIEWS[view]
                page.goto(stack.alb_url + path)
                if view == "home" and page.locator("#sign-out").count() == 0:
                    page.click("#sign-in")
                    page.fill("#username", READER)
                    page.fill("#password", DEV_PASSWORD)
                    page.click("#sign-in-form button[type=submit]")
                    page.wait_for_selector('ol[aria-label="For you"] li')
                page.wait_for_selector(ready)
                page.wait_for_load_state("networkidle")
                target = out / f"{view}-{size}.png"
                page.screenshot(path=str(target), full_page=False)
                written.append(target)
                print(f"wrote {target} ({target.stat().st_size:,} bytes)")
            context.close()
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", nargs="+", choices=list(VIEWS), default=list(VIEWS))
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--out", type=Path, default=definitions.ROOT / "web" / "screenshots")
    parser.add_argument("--state-dir", type=Path, help="a running stack's state directory (default: "
                                                       "$BOOKREC_STATE_DIR, else .run/)")
    args = parser.parse_args(argv)
    if args.state_dir:
        stack = Stack(args.state_dir, port_offset=_offset_of(args.state_dir))
        if not stack.running():
            raise SystemExit(f"no running stack in {args.state_dir}")
        take(stack, args.out, args.views, args.sizes)
        return 0
    with running_stack() as stack:
        take(stack, args.out, args.views, args.sizes)
    return 0


def _offset_of(state_dir: Path) -> int:
    """A running stack's port offset, from the ALB URL its env.json records."""
    from urllib.parse import urlparse

    from bookrec_local.stack import ALB_PORT

    url = Stack(state_dir).env.get("ALB_URL", "")
    port = urlparse(url).port
    if port is None:
        raise SystemExit(f"no running stack in {state_dir}")
    return port - ALB_PORT


if __name__ == "__main__":
    sys.exit(main())
