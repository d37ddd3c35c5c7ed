"""A migration or rollback that SIGKILLs itself after N committed batches.

Run by tests/test_migrate_crash.py as `python -m tests.migrate_child ...`.
It goes through the public API (`migrate`/`rollback` with an `on_batch`
callback), so the kill always lands between two committed batches without
any test hook in the product code.

    python -m tests.migrate_child migrate TARGET BATCH_SIZE KILL_AFTER LOG
    python -m tests.migrate_child rollback TARGET BATCH_SIZE KILL_AFTER RUN_ID
    python -m tests.migrate_child cutover TARGET BATCH_SIZE KILL_AFTER LOG
"""

from __future__ import annotations

import os
import signal
import sys

import eventstore
from eventstore.evolution.cutover import cutover
from eventstore.evolution.migrate import migrate, rollback


def main(argv: list[str]) -> int:
    command, target, batch_size, kill_after, extra = argv
    limit = int(kill_after)

    def kill(batches: int) -> None:
        if batches >= limit:
            os.kill(os.getpid(), signal.SIGKILL)

    with eventstore.open(target) as store:
        if command in ("migrate", "cutover"):
            run = migrate if command == "migrate" else cutover
            with open(extra, "a", encoding="utf-8") as log:
                run(store, batch_size=int(batch_size), log=log, on_batch=kill)
        else:
            rollback(store, extra, batch_size=int(batch_size), on_batch=kill)
    print("the run finished before the kill landed", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
