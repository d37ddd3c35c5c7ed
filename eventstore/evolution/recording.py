"""Recording the catalog a store is written with.

`record_catalog` keeps the catalog a store is written with in
`eventstore_schema_versions` (done automatically on a store's first append)
and tells subscribers (`HistoryStore.on_schema_evolution`). The record's
metadata also holds operator requests such as a timestamp backfill.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import EventStoreError
from ..store.protocol import SchemaVersionRow
from .catalogs import CURRENT, catalog_hash, generate
from .diff import Change, Severity, diff

if TYPE_CHECKING:
    from ..store import HistoryStore

__all__ = ["SchemaEvolution", "record_catalog", "schema_metadata", "set_schema_metadata"]


@dataclass(frozen=True, slots=True)
class SchemaEvolution:
    """A catalog recorded for the first time: what changed since the previous one."""

    version_id: str
    hash: str
    previous: str | None
    classification: Severity
    changes: tuple[Change, ...]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_catalog(store: HistoryStore, catalog_id: str = CURRENT) -> SchemaEvolution | None:
    """Record the catalog a store is written with, once; None when already recorded.

    The change against the previously recorded catalog is classified and kept
    in the record's metadata; the store's subscribers are told about it.
    """
    catalog = generate(catalog_id)
    digest = catalog_hash(catalog)
    versions = store.evolution.schema_versions()
    if any(v.version_id == catalog_id for v in versions):
        return None
    previous = versions[-1] if versions else None
    if previous is not None:
        result = diff(json.loads(previous.catalog), catalog)
        classification, changes = result.classification, result.changes
    else:
        classification, changes = "identical", ()
    metadata = {
        "previous": previous.version_id if previous else None,
        "classification": classification,
        "changes": [str(c) for c in changes],
    }
    row = SchemaVersionRow(
        catalog_id,
        digest,
        _now(),
        json.dumps(catalog, sort_keys=True, separators=(",", ":")),
        json.dumps(metadata),
    )
    with store.evolution.writing() as writer:
        writer.ensure_evolution_tables()
        inserted = writer.record_schema_version(row)
    if not inserted:
        return None
    evolution = SchemaEvolution(
        catalog_id, digest, previous.version_id if previous else None, classification, changes
    )
    for listener in list(store.schema_listeners):
        listener(evolution)
    return evolution


def schema_metadata(store: HistoryStore, version_id: str = CURRENT) -> dict[str, Any]:
    for row in store.evolution.schema_versions():
        if row.version_id == version_id:
            try:
                value = json.loads(row.metadata)
            except ValueError as exc:
                raise EventStoreError(f"metadata of catalog {version_id} is not JSON") from exc
            return value if isinstance(value, dict) else {}
    return {}


def set_schema_metadata(
    store: HistoryStore, metadata: dict[str, Any], version_id: str = CURRENT
) -> None:
    record_catalog(store, version_id)
    with store.evolution.writing() as writer:
        writer.ensure_evolution_tables()
        writer.set_schema_metadata(version_id, json.dumps(metadata, sort_keys=True))
