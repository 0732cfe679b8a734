"""The secrets docker-compose.yml reads from the environment, written to the `.env` docker compose reads.

    python -m bookrec_local.compose_env [--output PATH]   (default: the .env beside docker-compose.yml)

docker-compose.yml holds no secret: the internal token of the invalidate endpoint is
`${INTERNAL_TOKEN:?...}`, and compose refuses to start without it. This writes one, random, as the
local stack makes its own at every start (`identity.create_identity`), into a file only its owner can
read; a token already there is kept, so containers started with it keep matching. The file is
git-ignored and kept out of the images' build context. The token is never printed.
"""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from bookrec_local import definitions

VARIABLE = "INTERNAL_TOKEN"
TOKEN_BYTES = 24  # as the local stack's (identity.create_identity): 32 URL-safe characters


def write(path: Path) -> bool:
    """Make sure `path` sets INTERNAL_TOKEN (other lines kept); True when a new token was written."""
    lines = path.read_text().splitlines() if path.exists() else []
    if any(line.startswith(f"{VARIABLE}=") and line.strip() != f"{VARIABLE}=" for line in lines):
        return False
    lines = [line for line in lines if not line.startswith(f"{VARIABLE}=")]
    lines.append(f"{VARIABLE}={secrets.token_urlsafe(TOKEN_BYTES)}")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)  # also when the file was there before, readable by others
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bookrec_local.compose_env", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=definitions.ROOT / ".env",
                        help="the env file to write (default: .env beside docker-compose.yml)")
    args = parser.parse_args(argv)
    written = write(args.output)
    print(f"{args.output}: {VARIABLE} {'written (a new random token)' if written else 'already set, kept'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
