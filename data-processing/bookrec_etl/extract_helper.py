"""A helper process of extract: `python -m bookrec_etl.extract_helper JOB` (extract_processes.Helper starts it).

Its own module, so that `extract_processes`, whose classes the result pickles, is imported under its name
and not run as `__main__`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bookrec_etl.extract_processes import run

if __name__ == "__main__":
    try:
        run(Path(sys.argv[1]))
    except KeyboardInterrupt:  # Ctrl-C reaches the helper too: the main process says what happened
        sys.exit(130)
