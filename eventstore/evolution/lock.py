"""One run at a time per store: the run lock around migrate, backfill and rollback.

Every run that rewrites rows (a migration, a timestamp backfill, a rollback)
holds the store's run lock from before it reads the migration log until its
last batch has committed. Without it two migrations would both pick up the
same unfinished run and report each other's rewrites, and a rollback of a
running run would restore rows behind the migration's cursor while the
migration went on and marked the run completed. The lock is the backend's
(`migration_lock`, through `store.evolution.run_lock`): a flock on SQLite, a
session advisory lock on PostgreSQL, both released by the operating system or
the server when the holder dies, so a killed run is resumed by the next
command instead of leaving the store stuck.
Dry runs write nothing and take no lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import EventStoreError, MigrationLockedError

if TYPE_CHECKING:
    from ..store import HistoryStore

__all__ = ["run_lock"]


def _running(store: HistoryStore) -> str:
    """The run the log shows in progress, to name it in a refusal."""
    try:
        runs = store.evolution.migration_runs()
    except EventStoreError:  # the refusal matters more than naming the run
        return ""
    for run in reversed(runs):
        if run.status in ("running", "rolling_back"):
            doing = "rolling back" if run.status == "rolling_back" else run.kind
            return f"; run {run.run_id} ({doing}, started {run.started_at}) is in progress"
    return ""


@contextlib.contextmanager
def run_lock(store: HistoryStore, what: str) -> Iterator[None]:
    """Hold the store's run lock for `what`, or raise MigrationLockedError naming the holder."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(store.evolution.run_lock(what))
        except MigrationLockedError as exc:
            raise MigrationLockedError(
                f"cannot start {what}: {exc}{_running(store)}; only one migration, backfill or"
                " rollback runs at a time (wait for it to finish, or rerun once it is gone:"
                " an interrupted run resumes)"
            ) from None
        yield
