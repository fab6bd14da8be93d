"""Installer self-test: the record edge-extract wrote for selftest-report.txt is valid and ok.

Run by install.sh and install.ps1 with the freshly installed environment's Python:
    python selftest_check.py RECORD.json
"""

from __future__ import annotations

import sys
from pathlib import Path

from edge_extract import Result


def main() -> None:
    result = Result.model_validate_json(Path(sys.argv[1]).read_text(encoding="utf-8"))
    if result.status != "ok" or result.summary is None:
        sys.exit(f"self-test record has status {result.status}: {result.error}")


if __name__ == "__main__":
    main()
