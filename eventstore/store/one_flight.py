"""The one-flight append: the common append, checked and written by the database in one call.

Most appends continue their execution exactly where the caller says it
ends, with a batch that passes the history rules by itself
(`rules.clearing_condition`). For those, nothing the store decides between
reading the last event and inserting needs the database's answer: given
the stored last event's id and type, the decision is a comparison. A
backend that `AppendsInOneFlight` (PostgreSQL, `backends/postgres/one_flight.py`)
takes the batch with that comparison (`OneFlightAppend`) and makes it on the
server, under the execution's lock, in the transaction that inserts:

* the stored last id must be `after`: the caller's expected id, or (no
  expected id) the id before the batch's first;
* its type must not be terminal or unrecorded, and must be of the kinds
  `wanted` names when a completion of the batch names that event;
* the catalog row of a continued execution must still end at `after`.

When it holds, the backend inserts the batch and moves the catalog row
(`catalog.row_after`, the same change `catalog.advance` makes), and the
append is done. When it does not, nothing is written and the store runs
the plain route (`_Appender.write_prepared`) in a new transaction, which
gives the exact answer: an identical retry, a refusal and its error, a
catalog row recomputed, the rule walk. So the one-flight path never says
anything the plain route would not; it only skips the round trips when the
plain route's answer is "write it".

Not taken: inside `transaction()` (the backend declines), in a dual-write
window (legacy rows and shadows), for an empty batch, or when the batch
needs the rule walk whatever is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .. import events as ev
from ..codec import UNRECORDED_TYPE
from ..events import Event
from .catalog import row_after
from .protocol import AppendsInOneFlight, NewEvents
from .row_types import OneFlightAppend
from .rules import clearing_condition

if TYPE_CHECKING:
    from .history import HistoryStore

__all__ = ["backend_of", "plan", "written"]

REFUSED: Final = frozenset(ev.TERMINAL_TYPES | {UNRECORDED_TYPE})
"""Stored last types after which the batch goes the plain route: nothing may
follow a terminal event, and an unrecorded type must be read from its event."""


def backend_of(store: HistoryStore) -> AppendsInOneFlight | None:
    """The store's backend when it can append in one flight (asked once)."""
    backend = store.backend
    if isinstance(backend, AppendsInOneFlight) and backend.one_flight:
        return backend
    return None


def plan(
    store: HistoryStore, new: NewEvents, filled: list[Event], expected: int | None
) -> OneFlightAppend | None:
    """The batch with the conditions it is written under; None: plain route."""
    if not filled or store._dual_write is not None:
        return None
    after = filled[0].event_id - 1 if expected is None else expected
    if after == 0 and type(filled[0]) is not ev.OrchestrationStarted:
        return None  # MissingStartError, from the plain route
    clears, wanted = clearing_condition(new.event_ids, new.event_types, filled, after)
    if not clears:
        return None
    catalog = row_after(new, filled, after) if store._catalog_kept else None
    return OneFlightAppend(new, after, wanted, REFUSED, catalog)


def written(
    backend: AppendsInOneFlight | None,
    store: HistoryStore,
    new: NewEvents,
    filled: list[Event],
    expected: int | None,
) -> bool:
    """True when the append was written in one flight; False: take the plain route."""
    if backend is None:
        return False
    append = plan(store, new, filled, expected)
    return append is not None and backend.append_in_one_flight(append)
