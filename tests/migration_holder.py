"""A process that starts a migration run and holds it open until told to go on.

    python -m tests.migration_holder TARGET KIND

KIND is `migrate` or `backfill`. After the run's first batch has committed the
process prints `HOLDING <run id>` and waits for a line on stdin; on it, the
run goes on to its end and the process prints `DONE <rows rewritten>`. The
tests use it to have a run that is really in progress (holding the store's
run lock) while other processes try to start theirs, or to SIGKILL a holder
at a known point, without any timing.
"""

from __future__ import annotations

import sys

import eventstore
from eventstore.evolution.migrate import backfill_timestamps, migrate


def main() -> None:
    target, kind = sys.argv[1], sys.argv[2]
    with eventstore.open(target) as store:
        state: dict[str, str] = {}

        def hold(batches: int) -> None:
            if batches == 1:
                runs = store.evolution.migration_runs()
                sys.stdout.write(f"HOLDING {runs[-1].run_id}\n")
                sys.stdout.flush()
                state["go"] = sys.stdin.readline()

        run = backfill_timestamps if kind == "backfill" else migrate
        report = run(store, batch_size=20, on_batch=hold)
        sys.stdout.write(f"DONE {report.changed}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
