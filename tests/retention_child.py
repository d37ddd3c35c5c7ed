"""A retention run (or shards rebase) that SIGKILLs itself partway.

Run by tests/test_retention_crash.py as `python -m tests.retention_child ...`:

    python -m tests.retention_child retention TARGET ARCHIVE_DIR TICKS DELAY
    python -m tests.retention_child rebase TARGET - TICKS DELAY

It goes through the public API. The kill lands after TICKS progress ticks
(a census page, an archive member, a purge batch) when TICKS > 0, or after
DELAY seconds of wall time (anywhere, a transaction included) otherwise.
Small members and purge batches (module constants, set here) give the run
many steps to be killed between.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import eventstore
from eventstore.lifecycle import retention
from eventstore.lifecycle.shards import rebase_shards

CUT = dt.date(2025, 11, 23)


def main(argv: list[str]) -> int:
    command, target, archive, ticks_text, delay_text = argv
    ticks, delay = int(ticks_text), float(delay_text)
    seen = 0

    def kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def progress(label: str, total: int | None) -> Callable[[int], object]:
        def advance(n: int = 1) -> None:
            nonlocal seen
            seen += 1
            if ticks and seen >= ticks:
                kill()

        return advance

    if not ticks:
        threading.Timer(delay, kill).start()
    retention.MEMBER_EXECUTIONS = 8
    retention.PURGE_ROWS = 40
    retention.INDEX_BATCH = 16
    with eventstore.open(target) as store:
        if command == "retention":
            policy = retention.RetentionPolicy(cut=CUT, archive_dir=Path(archive))
            retention.run_retention(store, policy, progress=progress)
        else:
            rebase_shards(store, progress=progress)
    print("the run finished before the kill landed", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
