"""HistoryStore: the backend-neutral store and its append contract.

Every rule lives here once; backends (`eventstore.backends.sqlite`, `eventstore.backends.postgres`)
only move rows. The two hot routes are short on purpose:

* append: validate and fill (one pass) -> encode -> one typed decode of the
  whole batch (so no row is written that a reader would refuse) -> one
  transaction: read the last stored id, check, insert.
* read: fetch the execution in one piece where the backend can pack it
  (SQLite), else row by row -> decode (the packed form in one call) -> check
  each row agrees with the event it holds. proposals/storage-hot-paths.md
  gives the costs.
"""

from .history import HistoryStore, Transaction
from .opening import (
    _sqlite_path as _sqlite_path,  # the CLI's same-file guard resolves targets with it
)
from .opening import (
    open,  # noqa: A004 - the public name, as before the split
)
from .results import (
    DEFAULT_WRITER_VERSION,
    AppendResult,
    ExecutionStatus,
    FeedRecord,
    ImportReport,
    InstanceSummary,
    StoreObserver,
    row_location,
)

__all__ = [
    "DEFAULT_WRITER_VERSION",
    "AppendResult",
    "ExecutionStatus",
    "FeedRecord",
    "HistoryStore",
    "ImportReport",
    "InstanceSummary",
    "StoreObserver",
    "Transaction",
    "open",
    "row_location",
]
