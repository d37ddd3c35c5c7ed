"""HistoryStore: the backend-neutral store and its append contract.

`eventstore.open` (in `eventstore.opening`) opens one on a target.

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

from .catalog import ExecutionRecord
from .history import HistoryStore, Transaction
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
    "ExecutionRecord",
    "ExecutionStatus",
    "FeedRecord",
    "HistoryStore",
    "ImportReport",
    "InstanceSummary",
    "StoreObserver",
    "Transaction",
    "row_location",
]
