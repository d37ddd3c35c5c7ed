"""Lifecycle of stored histories: the execution catalog, day shards, retention.

Layer 6 (a use of the store): nothing here talks SQL or touches a backend;
everything goes through `HistoryStore`. The shard-key rule itself lives in the
store layer (`eventstore.store.shard_key`), because appends record it.
"""

from ..store.shard_key import ROOT_SHARD, derive_shard_key

__all__ = ["ROOT_SHARD", "derive_shard_key"]
