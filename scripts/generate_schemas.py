"""Regenerate the shipped schema catalogs (eventstore/evolution/schemas/*.json) from the code.

Usage: python scripts/generate_schemas.py [--check]

With --check, write nothing and exit 1 if a shipped catalog differs from what
the code generates.
"""

from __future__ import annotations

import sys
from pathlib import Path

from eventstore.evolution.schema import CATALOG_IDS, catalog_json

SCHEMAS = Path(__file__).resolve().parent.parent / "eventstore" / "evolution" / "schemas"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    SCHEMAS.mkdir(exist_ok=True)
    for catalog_id in CATALOG_IDS:
        path = SCHEMAS / f"{catalog_id}.json"
        text = catalog_json(catalog_id)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.name)
        if not check:
            path.write_text(text, encoding="utf-8")
    verb = "differ" if check else "written"
    print(f"{len(stale)} catalogs {verb}" + (f": {', '.join(stale)}" if stale else ""))
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
