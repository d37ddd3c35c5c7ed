"""eventstore: an append-only store for durable-orchestration histories.

Reads every generation of duroxide's history format through one untagged
compatibility layer and writes exactly what duroxide writes.
"""

from . import events
from .codec import Codec, Generation, decode, detect_version, encode
from .codec.upcasting import UpcastContext, UpcasterRegistry
from .errors import (
    ArchiveError,
    ArchiveMissingError,
    ConcurrencyError,
    ConflictError,
    DecodeError,
    EventOrderError,
    EventStoreError,
    HistoryRuleError,
    IdentityMismatchError,
    InvalidEventError,
    Location,
    MigrationLockedError,
    MissingStartError,
    NondeterminismError,
    PositionsRenumberedError,
    ReadOnlyError,
    RowMismatchError,
    SchemaEvolutionError,
    StoreBusyError,
    StoreError,
    StoreNotFoundError,
    TargetError,
    ValidationError,
    WriteGenerationError,
)
from .events import Event, UnknownEvent
from .opening import open
from .store import (
    AppendResult,
    ExecutionRecord,
    FeedRecord,
    HistoryStore,
    InstanceSummary,
    Transaction,
)

__version__ = "0.1.0"

__all__ = [
    "AppendResult",
    "ArchiveError",
    "ArchiveMissingError",
    "Codec",
    "ConcurrencyError",
    "ConflictError",
    "DecodeError",
    "Event",
    "EventOrderError",
    "EventStoreError",
    "ExecutionRecord",
    "FeedRecord",
    "Generation",
    "HistoryRuleError",
    "HistoryStore",
    "IdentityMismatchError",
    "InstanceSummary",
    "InvalidEventError",
    "Location",
    "MigrationLockedError",
    "MissingStartError",
    "NondeterminismError",
    "PositionsRenumberedError",
    "ReadOnlyError",
    "RowMismatchError",
    "SchemaEvolutionError",
    "StoreBusyError",
    "StoreError",
    "StoreNotFoundError",
    "TargetError",
    "Transaction",
    "UnknownEvent",
    "UpcastContext",
    "UpcasterRegistry",
    "ValidationError",
    "WriteGenerationError",
    "__version__",
    "decode",
    "detect_version",
    "encode",
    "events",
    "open",
]


def _show_as_eventstore() -> None:
    # Public classes read as `eventstore.X` in reprs and tracebacks, where
    # users meet them, not as the private module that defines them; pickle
    # still finds them (eventstore.X exists).
    for name in __all__:
        value = globals()[name]
        if isinstance(value, type):
            value.__module__ = __name__


_show_as_eventstore()
