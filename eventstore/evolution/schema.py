"""Schema snapshots of every event generation, and the compatibility checker.

A *catalog* is a JSON Schema document describing every event type of one
generation of the wire format, generated from the msgspec types
(`msgspec.json.schema_components`). The package ships one per generation in
`eventstore/evolution/schemas/` (regenerate with `scripts/generate_schemas.py`):

* `V0a`, `V0b`: the legacy externally tagged shape (`{"Type": {...}}`);
* `V1-base`, `V1-session`, `V1-tag`, `V1-carry-forward`, `V1`: the current
  flat shape before and after duroxide added `ActivityScheduled.session_id`,
  `ActivityScheduled.tag`, `OrchestrationStarted.carry_forward_events` and the
  newer event types (persistent external events, custom status, key-value).
  `V1` is what this code reads and writes.

`diff` classifies the change between two catalogs the way schema registries
do for readers of old data (BACKWARD): a new optional field or event type is
`additive`; a new required field, a removed field or event type, a changed
type or a removed enum variant is `breaking`; documentation alone is
`identical`. `mode="full"` also requires old readers to read new data.

`check` compares the code's catalog with every generation a store actually
holds (and every catalog the store was written with), hop by hop along the
chain, and names the registered migrations (`eventstore.codec.upcasting`) that
cover each breaking change; `require_compatible` raises SchemaEvolutionError
when one has none. `record_catalog` keeps the catalog a store is written with
in `eventstore_schema_versions` (done automatically on a store's first
append) and tells subscribers (`HistoryStore.on_schema_evolution`).

This module is the public face of those four jobs; each lives in its own
module: `catalogs`, `diff`, `check` and `recording`.
"""

from __future__ import annotations

from .catalogs import (
    CATALOG_IDS,
    CURRENT,
    catalog_hash,
    catalog_id,
    catalog_json,
    generate,
    load_catalog,
    shipped_catalog,
)
from .check import CheckReport, Coverage, HopReport, check, describe_step, require_compatible
from .diff import Change, Diff, Mode, Severity, diff
from .recording import SchemaEvolution, record_catalog, schema_metadata, set_schema_metadata

__all__ = [
    "CATALOG_IDS",
    "CURRENT",
    "Change",
    "CheckReport",
    "Coverage",
    "Diff",
    "HopReport",
    "Mode",
    "SchemaEvolution",
    "Severity",
    "catalog_hash",
    "catalog_id",
    "catalog_json",
    "check",
    "describe_step",
    "diff",
    "generate",
    "load_catalog",
    "record_catalog",
    "require_compatible",
    "schema_metadata",
    "set_schema_metadata",
    "shipped_catalog",
]
