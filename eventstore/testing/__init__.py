"""Test toolkit: a history builder, JSONL fixtures, a pytest plugin, strategies.

* `HistoryBuilder` builds valid histories fluently (ids and source ids for you).
* `load_history` / `save_history` read and write JSONL fixtures.
* `eventstore.testing.plugin` is a pytest plugin (installed through the
  `pytest11` entry point) with the `history_store`, `history_store_factory`
  and `history_builder` fixtures.
* `eventstore.testing.conformance` is the backend conformance suite: subclass
  `HistoryStoreConformance` to run the store's contract against a backend
  (needs pytest and `hypothesis`).
* `eventstore.testing.strategies` holds Hypothesis strategies (needs the
  `hypothesis` package); `eventstore.testing.tangled` draws histories in any
  tangle of operations and ends, valid or not, for code that reads a
  history's shape (`eventstore.pairing`).
"""

from .builder import DEFAULT_START_MS, HistoryBuilder, RawJson, payload
from .jsonl import dump_history, load_history, parse_history, save_history

__all__ = [
    "DEFAULT_START_MS",
    "HistoryBuilder",
    "RawJson",
    "dump_history",
    "load_history",
    "parse_history",
    "payload",
    "save_history",
]
