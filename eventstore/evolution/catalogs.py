"""The catalogs: a JSON Schema document per generation of the wire format.

A *catalog* describes every event type of one generation, generated from the
msgspec types (`msgspec.json.schema_components`). The package ships one per
generation in `eventstore/evolution/schemas/` (regenerate with
`scripts/generate_schemas.py`):

* `V0a`, `V0b`: the legacy externally tagged shape (`{"Type": {...}}`);
* `V1-base`, `V1-session`, `V1-tag`, `V1-carry-forward`, `V1-core`, `V1`:
  the current flat shape before and after duroxide added
  `ActivityScheduled.session_id`, `ActivityScheduled.tag`,
  `OrchestrationStarted.carry_forward_events` and the newer event types
  (persistent external events, custom status, key-value); `V1-core` is what
  duroxide 0.1.32 writes, and `V1` adds the phase-2 metadata
  (`events.PHASE2_FIELDS`, all optional). `V1` is what this code reads and
  writes.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import msgspec

from .. import events as ev
from ..errors import DecodeError, SchemaEvolutionError

__all__ = [
    "CATALOG_IDS",
    "CHAIN",
    "CURRENT",
    "SPECS",
    "catalog_hash",
    "catalog_id",
    "catalog_json",
    "generate",
    "load_catalog",
    "shipped_catalog",
    "validate_catalog",
]

CURRENT: Final = "V1"
"""The catalog id of what this code reads and writes."""


# --------------------------------------------------------------------------
# The generations, as data
# --------------------------------------------------------------------------

# Fields of each legacy type (besides event_id), from the wire format.
_V0_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "OrchestrationStarted": ("name", "version", "input", "parent_instance", "parent_id"),
    "OrchestrationCompleted": ("output",),
    "OrchestrationFailed": ("details",),
    "ActivityScheduled": ("name", "input", "execution_id"),
    "ActivityCompleted": ("source_event_id", "result"),
    "ActivityFailed": ("source_event_id", "details"),
    "TimerCreated": ("fire_at_ms", "execution_id"),
    "TimerFired": ("source_event_id", "fire_at_ms"),
    "ExternalSubscribed": ("name",),
    "ExternalEvent": ("name", "data"),
    "OrchestrationChained": ("name", "instance", "input"),
    "SubOrchestrationScheduled": ("name", "instance", "input", "execution_id"),
    "SubOrchestrationCompleted": ("source_event_id", "result"),
    "SubOrchestrationFailed": ("source_event_id", "details"),
    "OrchestrationContinuedAsNew": ("input",),
    "OrchestrationCancelRequested": ("reason",),
    "SystemCall": ("op", "value", "execution_id"),
}
_FAILURES: Final = frozenset({"OrchestrationFailed", "ActivityFailed", "SubOrchestrationFailed"})

# Event types duroxide added after V1's first release.
_NEWER_TYPES: Final = frozenset(
    {
        "ExternalSubscribedPersistent",
        "ExternalEventPersistent",
        "ExternalSubscribedPersistentCancelled",
        "CustomStatusUpdated",
        "KeyValueSet",
        "KeyValueCleared",
        "KeyValuesCleared",
    }
)


@dataclass(frozen=True, slots=True)
class _Spec:
    id: str
    generation: str
    """The registry version its rows upcast from (V0a, V0b, V1)."""
    description: str
    legacy: bool = False
    error_string: bool = False
    """V0a: failures carry `error`, a string, instead of `details`."""
    error_variants: tuple[str, ...] = ("Application", "Infrastructure", "Configuration", "Poison")
    without_fields: frozenset[tuple[str, str]] = frozenset()
    without_types: frozenset[str] = frozenset()


# Every catalog before `V1` lacks the phase-2 metadata.
_P2: Final = ev.PHASE2_FIELDS

_V1SPECS: Final = (
    _Spec(
        "V1-base",
        "V1",
        "V1 as first released: flat objects with a `type` tag and six common fields",
        without_fields=frozenset(
            {
                ("ActivityScheduled", "session_id"),
                ("ActivityScheduled", "tag"),
                ("OrchestrationStarted", "carry_forward_events"),
                ("OrchestrationStarted", "initial_custom_status"),
            }
        )
        | _P2,
        without_types=_NEWER_TYPES,
    ),
    _Spec(
        "V1-session",
        "V1",
        "V1 with ActivityScheduled.session_id",
        without_fields=frozenset(
            {
                ("ActivityScheduled", "tag"),
                ("OrchestrationStarted", "carry_forward_events"),
                ("OrchestrationStarted", "initial_custom_status"),
            }
        )
        | _P2,
        without_types=_NEWER_TYPES,
    ),
    _Spec(
        "V1-tag",
        "V1",
        "V1 with ActivityScheduled.session_id and tag",
        without_fields=frozenset(
            {
                ("OrchestrationStarted", "carry_forward_events"),
                ("OrchestrationStarted", "initial_custom_status"),
            }
        )
        | _P2,
        without_types=_NEWER_TYPES,
    ),
    _Spec(
        "V1-carry-forward",
        "V1",
        "V1 with session_id, tag and OrchestrationStarted.carry_forward_events",
        without_fields=frozenset({("OrchestrationStarted", "initial_custom_status")}) | _P2,
        without_types=_NEWER_TYPES,
    ),
    _Spec(
        "V1-core",
        "V1",
        "V1 as duroxide 0.1.32 writes it: every event type, no phase-2 metadata",
        without_fields=_P2,
    ),
    _Spec(
        CURRENT,
        "V1",
        "V1 as this code reads and writes it: duroxide 0.1.32's events and the optional"
        " phase-2 metadata (runtime, worker, trace, correlation, tags, retries)",
    ),
)

SPECS: Final[dict[str, _Spec]] = {
    spec.id: spec
    for spec in (
        _Spec(
            "V0a",
            "V0a",
            'legacy (to Oct 2025): {"Type": {...}}; failures carry `error`, a string',
            legacy=True,
            error_string=True,
        ),
        _Spec(
            "V0b",
            "V0b",
            'legacy (Oct-Nov 2025): {"Type": {...}}; failures carry `details` (ErrorDetails)',
            legacy=True,
            error_variants=("Application", "Infrastructure", "Configuration"),
        ),
        *_V1SPECS,
    )
}

CATALOG_IDS: Final = tuple(SPECS)
"""Every catalog the package ships, oldest first."""

# The chain a generation's rows follow to the current catalog (its hops).
CHAIN: Final[dict[str, tuple[str, ...]]] = {
    "V0a": ("V0a", "V0b", CURRENT),
    "V0b": ("V0b", CURRENT),
    "V1-base": ("V1-base", CURRENT),
    "V1-session": ("V1-session", CURRENT),
    "V1-tag": ("V1-tag", CURRENT),
    "V1-carry-forward": ("V1-carry-forward", CURRENT),
    "V1-core": ("V1-core", CURRENT),
    CURRENT: (CURRENT,),
}

# --------------------------------------------------------------------------
# Generating catalogs from the msgspec types
# --------------------------------------------------------------------------

_U64_SCHEMA: Final = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}


_STRING: Final = {"type": "string"}
_UNKNOWN_VARIANT: Final = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "description": "a variant this version does not know, kept verbatim",
}
# The bodies of ErrorDetails' variants, as stored (see the wire format).
_ERROR_DETAILS_BODIES: Final[dict[str, Any]] = {
    "Application": {
        "type": "object",
        "properties": {
            "kind": {
                "anyOf": [
                    _STRING,
                    {
                        "type": "object",
                        "properties": {
                            "Cancelled": {
                                "type": "object",
                                "properties": {"reason": _STRING},
                                "required": ["reason"],
                            }
                        },
                        "required": ["Cancelled"],
                    },
                    _UNKNOWN_VARIANT,
                ],
                "description": '"ActivityFailed", "OrchestrationFailed", "Panicked",'
                " or {Cancelled: {reason}}",
            },
            "message": _STRING,
            "retryable": {"type": "boolean"},
        },
        "required": ["kind", "message", "retryable"],
    },
    "Infrastructure": {
        "type": "object",
        "properties": {
            "operation": _STRING,
            "message": _STRING,
            "retryable": {"type": "boolean"},
        },
        "required": ["operation", "message", "retryable"],
    },
    "Configuration": {
        "type": "object",
        "properties": {
            "kind": {"anyOf": [_STRING, _UNKNOWN_VARIANT]},
            "resource": _STRING,
            "message": {"anyOf": [_STRING, {"type": "null"}], "default": None},
        },
        "required": ["kind", "resource"],
    },
    "Poison": {
        "type": "object",
        "properties": {
            "attempt_count": _U64_SCHEMA,
            "max_attempts": _U64_SCHEMA,
            "message_type": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "x-externally-tagged": True,
                "properties": {
                    "Orchestration": {"type": "object"},
                    "Activity": {"type": "object"},
                    "FailedDeserialization": {"type": "object"},
                },
            },
            "message": _STRING,
        },
        "required": ["attempt_count", "max_attempts", "message_type", "message"],
    },
}


def _error_details_schema(variants: Sequence[str]) -> dict[str, Any]:
    """ErrorDetails, externally tagged by hand (msgspec cannot express it)."""
    return {
        "title": "ErrorDetails",
        "description": "Externally tagged: an object with exactly one key naming the variant.",
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "x-externally-tagged": True,
        "properties": {name: copy.deepcopy(_ERROR_DETAILS_BODIES[name]) for name in variants},
    }


def _field_spec(info: msgspec.structs.FieldInfo) -> tuple[str, Any, Any] | tuple[str, Any]:
    if info.default is not msgspec.NODEFAULT:
        return (info.name, info.type, info.default)
    if info.default_factory is not msgspec.NODEFAULT:
        return (info.name, info.type, msgspec.field(default_factory=info.default_factory))
    return (info.name, info.type)


def _event_struct(spec: _Spec, cls: type[ev.EventBase]) -> type[msgspec.Struct]:
    """A Struct with exactly the fields `cls` has in this generation."""
    name = cls.event_type
    fields = msgspec.structs.fields(cls)
    doc = cls.__doc__ if cls.__doc__ and "__init_subclass__" not in cls.__doc__ else None
    if spec.legacy:
        wanted = {"event_id", *_V0_FIELDS[name]}
        kept: list[Any] = []
        for info in fields:
            if info.name not in wanted:
                continue
            if info.name == "details" and spec.error_string:
                kept.append(("error", str))
                continue
            kept.append(_field_spec(info))
        return msgspec.defstruct(name, kept, kw_only=True, module=__name__)
    kept = [_field_spec(f) for f in fields if (name, f.name) not in spec.without_fields]
    struct = msgspec.defstruct(
        name, kept, kw_only=True, tag_field="type", tag=name, module=__name__
    )
    if doc:
        struct.__doc__ = doc
    return struct


def _types(spec: _Spec) -> list[type[ev.EventBase]]:
    if spec.legacy:
        return [ev.EVENT_TYPES[name] for name in _V0_FIELDS]
    return [
        cls
        for name, cls in ev.EVENT_TYPES.items()
        if name != "SystemCall" and name not in spec.without_types
    ]


@functools.cache
def _generate_cached(catalog_id: str) -> str:
    spec = SPECS[catalog_id]
    error_details = _error_details_schema(spec.error_variants)

    def hook(tp: type) -> dict[str, Any]:
        if tp is ev.ErrorDetails:
            return error_details
        raise NotImplementedError(f"no JSON Schema for {tp!r}")

    types = _types(spec)
    structs = [_event_struct(spec, cls) for cls in types]
    _, components = msgspec.json.schema_components(
        structs, schema_hook=hook, ref_template="#/$defs/{name}"
    )
    catalog: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"duroxide history events, {spec.id}",
        "description": spec.description,
        "x-eventstore-catalog": {
            "format": 1,
            "id": spec.id,
            "generation": spec.generation,
            "shape": "externally-tagged" if spec.legacy else "internally-tagged",
            "tag_field": None if spec.legacy else "type",
        },
        "events": {cls.event_type: {"$ref": f"#/$defs/{cls.event_type}"} for cls in types},
        "$defs": dict(sorted(components.items())),
    }
    return json.dumps(catalog, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def generate(catalog_id: str = CURRENT) -> dict[str, Any]:
    """The catalog of one generation, generated from the code's msgspec types."""
    if catalog_id not in SPECS:
        raise SchemaEvolutionError(
            f"unknown catalog {catalog_id!r}; known: {', '.join(CATALOG_IDS)}"
        )
    return json.loads(_generate_cached(catalog_id))  # type: ignore[no-any-return]


def catalog_json(catalog_id: str = CURRENT) -> str:
    """`generate(catalog_id)` serialized as shipped (indented, trailing newline)."""
    generate(catalog_id)  # validates the id
    return _generate_cached(catalog_id)


def catalog_hash(catalog: dict[str, Any]) -> str:
    """sha256 of the catalog's canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(catalog, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def catalog_id(catalog: dict[str, Any]) -> str:
    meta = catalog.get("x-eventstore-catalog")
    if isinstance(meta, dict) and isinstance(meta.get("id"), str):
        return str(meta["id"])
    return str(catalog.get("title", "?"))


def shipped_catalog(catalog_id: str) -> dict[str, Any]:
    """A catalog shipped in the package (eventstore/evolution/schemas/<id>.json)."""
    if catalog_id not in SPECS:
        raise SchemaEvolutionError(
            f"unknown catalog {catalog_id!r}; known: {', '.join(CATALOG_IDS)}"
        )
    text = (
        resources.files("eventstore.evolution")
        .joinpath("schemas", f"{catalog_id}.json")
        .read_text()
    )
    return json.loads(text)  # type: ignore[no-any-return]


def load_catalog(source: str) -> dict[str, Any]:
    """A catalog from a file path, or a shipped catalog by id (V0a, V0b, V1, ...)."""
    if source in SPECS:
        try:
            return shipped_catalog(source)
        except FileNotFoundError:
            return generate(source)
    try:
        with open(source, encoding="utf-8") as handle:
            data = json.load(handle)
    except ValueError as exc:
        raise DecodeError(f"{source}: not JSON: {exc}") from None
    validate_catalog(data, source)
    return data  # type: ignore[no-any-return]


def validate_catalog(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise SchemaEvolutionError(f"{where}: a catalog is a JSON object")
    events = data.get("events")
    if not isinstance(events, dict) or not isinstance(data.get("$defs", {}), dict):
        raise SchemaEvolutionError(
            f"{where}: not an event catalog (needs an `events` object of JSON Schemas)"
        )
    for name, schema in events.items():
        if not isinstance(schema, dict):
            raise SchemaEvolutionError(f"{where}: events.{name} is not a JSON Schema object")
