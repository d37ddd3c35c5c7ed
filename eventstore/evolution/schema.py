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
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from .. import events as ev
from ..codec import Generation
from ..codec.upcasting import ANY_TYPE, Upcaster, UpcasterRegistry
from ..errors import DecodeError, EventStoreError, SchemaEvolutionError
from ..store.protocol import SchemaVersionRow

if TYPE_CHECKING:
    from ..store import HistoryStore

__all__ = [
    "CATALOG_IDS",
    "CURRENT",
    "Change",
    "CheckReport",
    "Diff",
    "HopReport",
    "SchemaEvolution",
    "catalog_hash",
    "catalog_json",
    "check",
    "diff",
    "generate",
    "load_catalog",
    "record_catalog",
    "require_compatible",
    "shipped_catalog",
]

CURRENT: Final = "V1"
"""The catalog id of what this code reads and writes."""

Severity = Literal["identical", "additive", "breaking"]
Mode = Literal["backward", "full"]
_RANK: Final[dict[str, int]] = {"identical": 0, "additive": 1, "breaking": 2}
_SEVERITIES: Final[tuple[Severity, ...]] = ("identical", "additive", "breaking")

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


_V1_SPECS: Final = (
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
        ),
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
        ),
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
        ),
        without_types=_NEWER_TYPES,
    ),
    _Spec(
        "V1-carry-forward",
        "V1",
        "V1 with session_id, tag and OrchestrationStarted.carry_forward_events",
        without_fields=frozenset({("OrchestrationStarted", "initial_custom_status")}),
        without_types=_NEWER_TYPES,
    ),
    _Spec(
        CURRENT,
        "V1",
        "V1 as this code reads and writes it (duroxide 0.1.32 and later): every event type",
    ),
)

_SPECS: Final[dict[str, _Spec]] = {
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
        *_V1_SPECS,
    )
}

CATALOG_IDS: Final = tuple(_SPECS)
"""Every catalog the package ships, oldest first."""

# The chain a generation's rows follow to the current catalog (its hops).
_CHAIN: Final[dict[str, tuple[str, ...]]] = {
    "V0a": ("V0a", "V0b", CURRENT),
    "V0b": ("V0b", CURRENT),
    "V1-base": ("V1-base", CURRENT),
    "V1-session": ("V1-session", CURRENT),
    "V1-tag": ("V1-tag", CURRENT),
    "V1-carry-forward": ("V1-carry-forward", CURRENT),
    CURRENT: (CURRENT,),
}

# --------------------------------------------------------------------------
# Generating catalogs from the msgspec types
# --------------------------------------------------------------------------

_U64_SCHEMA: Final = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}


def _error_details_schema(variants: Sequence[str]) -> dict[str, Any]:
    """ErrorDetails, externally tagged by hand (msgspec cannot express it)."""
    string = {"type": "string"}
    unknown = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "description": "a variant this version does not know, kept verbatim",
    }
    bodies: dict[str, Any] = {
        "Application": {
            "type": "object",
            "properties": {
                "kind": {
                    "anyOf": [
                        string,
                        {
                            "type": "object",
                            "properties": {
                                "Cancelled": {
                                    "type": "object",
                                    "properties": {"reason": string},
                                    "required": ["reason"],
                                }
                            },
                            "required": ["Cancelled"],
                        },
                        unknown,
                    ],
                    "description": '"ActivityFailed", "OrchestrationFailed", "Panicked",'
                    " or {Cancelled: {reason}}",
                },
                "message": string,
                "retryable": {"type": "boolean"},
            },
            "required": ["kind", "message", "retryable"],
        },
        "Infrastructure": {
            "type": "object",
            "properties": {
                "operation": string,
                "message": string,
                "retryable": {"type": "boolean"},
            },
            "required": ["operation", "message", "retryable"],
        },
        "Configuration": {
            "type": "object",
            "properties": {
                "kind": {"anyOf": [string, unknown]},
                "resource": string,
                "message": {"anyOf": [string, {"type": "null"}], "default": None},
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
                "message": string,
            },
            "required": ["attempt_count", "max_attempts", "message_type", "message"],
        },
    }
    return {
        "title": "ErrorDetails",
        "description": "Externally tagged: an object with exactly one key naming the variant.",
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "x-externally-tagged": True,
        "properties": {name: bodies[name] for name in variants},
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
    spec = _SPECS[catalog_id]
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
    if catalog_id not in _SPECS:
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
    if catalog_id not in _SPECS:
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
    if source in _SPECS:
        try:
            return shipped_catalog(source)
        except FileNotFoundError:
            return generate(source)
    try:
        with open(source, encoding="utf-8") as handle:
            data = json.load(handle)
    except ValueError as exc:
        raise DecodeError(f"{source}: not JSON: {exc}") from None
    _validate(data, source)
    return data  # type: ignore[no-any-return]


def _validate(data: Any, where: str) -> None:
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


# --------------------------------------------------------------------------
# Diff
# --------------------------------------------------------------------------

# kind -> (severity for new readers of old data, severity for old readers of new data)
_RULES: Final[dict[str, tuple[Severity, Severity]]] = {
    "shape changed": ("breaking", "breaking"),
    "event type added": ("additive", "breaking"),
    "event type removed": ("breaking", "additive"),
    "optional field added": ("additive", "additive"),
    "required field added": ("breaking", "additive"),
    "optional field removed": ("breaking", "additive"),
    "required field removed": ("breaking", "breaking"),
    "field became required": ("breaking", "additive"),
    "field became optional": ("additive", "breaking"),
    "enum variant added": ("additive", "breaking"),
    "enum variant removed": ("breaking", "additive"),
    "type changed": ("breaking", "breaking"),
    "default changed": ("breaking", "additive"),
    "documentation changed": ("identical", "identical"),
}
_DOC_KEYS: Final = frozenset({"title", "description", "examples", "$comment"})


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    """`EventType.field...`, or `*` for the whole catalog."""
    kind: str
    detail: str
    severity: Severity

    @property
    def event_type(self) -> str:
        return self.path.split(".", 1)[0]

    def __str__(self) -> str:
        return f"{self.severity} {self.path}: {self.kind}" + (
            f" ({self.detail})" if self.detail else ""
        )


@dataclass(frozen=True, slots=True)
class Diff:
    old: str
    new: str
    mode: Mode
    changes: tuple[Change, ...]

    @property
    def classification(self) -> Severity:
        worst = max((_RANK[c.severity] for c in self.changes), default=0)
        return _SEVERITIES[worst]

    @property
    def breaking(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.severity == "breaking")

    def lines(self) -> list[str]:
        return [self.classification, *(str(c) for c in self.changes)]


def _severity(kind: str, mode: Mode) -> Severity:
    backward, forward = _RULES[kind]
    if mode == "full" and _RANK[forward] > _RANK[backward]:
        return forward
    return backward


class _Differ:
    def __init__(self, old: dict[str, Any], new: dict[str, Any], mode: Mode) -> None:
        self.old_defs: dict[str, Any] = old.get("$defs", {})
        self.new_defs: dict[str, Any] = new.get("$defs", {})
        self.mode: Mode = mode
        self.changes: list[Change] = []
        self.ignore: set[str] = set()
        """Field paths covered by another change (the tag of a changed shape)."""

    def add(self, path: str, kind: str, detail: str = "") -> None:
        self.changes.append(Change(path, kind, detail, _severity(kind, self.mode)))

    @staticmethod
    def _resolve(schema: Any, defs: dict[str, Any]) -> Any:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 32:
            ref = str(schema["$ref"])
            name = ref.rsplit("/", 1)[-1]
            if name not in defs:
                raise SchemaEvolutionError(f"unresolvable reference {ref}")
            schema = defs[name]
            seen += 1
        return schema

    def _strip(self, schema: Any, defs: dict[str, Any]) -> Any:
        schema = self._resolve(schema, defs)
        if isinstance(schema, dict):
            return {k: self._strip(v, defs) for k, v in schema.items() if k not in _DOC_KEYS}
        if isinstance(schema, list):
            return [self._strip(v, defs) for v in schema]
        return schema

    def compare(self, path: str, old: Any, new: Any) -> None:
        old = self._resolve(old, self.old_defs)
        new = self._resolve(new, self.new_defs)
        old_core = self._strip(old, self.old_defs)
        new_core = self._strip(new, self.new_defs)
        if old_core == new_core:
            if self._inline(old, self.old_defs) != self._inline(new, self.new_defs):
                self.add(path, "documentation changed")
            return
        if not (isinstance(old, dict) and isinstance(new, dict)):
            self.add(path, "type changed", f"{_short(old_core)} -> {_short(new_core)}")
            return
        if "enum" in old and "enum" in new:
            self._variants(path, old["enum"], new["enum"], "enum variant")
            rest_old = {k: v for k, v in old_core.items() if k != "enum"}
            rest_new = {k: v for k, v in new_core.items() if k != "enum"}
            if rest_old != rest_new:
                self.add(path, "type changed", f"{_short(rest_old)} -> {_short(rest_new)}")
            return
        if "anyOf" in old and "anyOf" in new:
            old_alts = [
                json.dumps(self._strip(a, self.old_defs), sort_keys=True) for a in old["anyOf"]
            ]
            new_alts = [
                json.dumps(self._strip(a, self.new_defs), sort_keys=True) for a in new["anyOf"]
            ]
            self._variants(path, old_alts, new_alts, "enum variant", label="alternative")
            self._default(path, old, new)
            return
        if old.get("type") == "object" and new.get("type") == "object":
            self._object(path, old, new)
            return
        if old_core.get("type") != new_core.get("type") or not self._default(path, old, new):
            self.add(path, "type changed", f"{_short(old_core)} -> {_short(new_core)}")

    def _inline(self, schema: Any, defs: dict[str, Any]) -> Any:
        schema = self._resolve(schema, defs)
        if isinstance(schema, dict):
            return {k: self._inline(v, defs) for k, v in schema.items()}
        if isinstance(schema, list):
            return [self._inline(v, defs) for v in schema]
        return schema

    def _default(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Report a changed default; True when that is the only difference."""
        if old.get("default", ...) != new.get("default", ...):
            self.add(path, "default changed", f"{old.get('default')!r} -> {new.get('default')!r}")
            others_old = {k: v for k, v in old.items() if k != "default" and k not in _DOC_KEYS}
            others_new = {k: v for k, v in new.items() if k != "default" and k not in _DOC_KEYS}
            return others_old == others_new
        return False

    def _variants(
        self, path: str, old: Sequence[Any], new: Sequence[Any], kind: str, label: str = "value"
    ) -> None:
        for value in new:
            if value not in old:
                self.add(path, f"{kind} added", f"{label} {value}")
        for value in old:
            if value not in new:
                self.add(path, f"{kind} removed", f"{label} {value}")

    def _object(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        old_props: dict[str, Any] = old.get("properties", {})
        new_props: dict[str, Any] = new.get("properties", {})
        old_req = set(old.get("required", []))
        new_req = set(new.get("required", []))
        tagged = bool(old.get("x-externally-tagged")) and bool(new.get("x-externally-tagged"))
        for name, schema in new_props.items():
            where = f"{path}.{name}"
            if where in self.ignore:
                continue
            if name not in old_props:
                if tagged:
                    self.add(path, "enum variant added", f"variant {name}")
                elif name in new_req:
                    self.add(where, "required field added")
                else:
                    self.add(where, "optional field added")
                continue
            self.compare(where, old_props[name], schema)
            if not tagged and name in new_req and name not in old_req:
                self.add(where, "field became required")
            elif not tagged and name in old_req and name not in new_req:
                self.add(where, "field became optional")
        for name in old_props:
            if name not in new_props and f"{path}.{name}" not in self.ignore:
                if tagged:
                    self.add(path, "enum variant removed", f"variant {name}")
                elif name in old_req:
                    self.add(f"{path}.{name}", "required field removed")
                else:
                    self.add(f"{path}.{name}", "optional field removed")
        rest_old = {k: v for k, v in old.items() if k not in {"properties", "required", *_DOC_KEYS}}
        rest_new = {k: v for k, v in new.items() if k not in {"properties", "required", *_DOC_KEYS}}
        if self._strip(rest_old, self.old_defs) != self._strip(rest_new, self.new_defs):
            self.add(path, "type changed", "object constraints differ")
        for key in ("title", "description"):
            if old.get(key) != new.get(key):
                self.add(path, "documentation changed", key)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def diff(old: dict[str, Any], new: dict[str, Any], *, mode: Mode = "backward") -> Diff:
    """Classify the change from catalog `old` to catalog `new` (see the module docstring)."""
    _validate(old, "old catalog")
    _validate(new, "new catalog")
    differ = _Differ(old, new, mode)
    old_meta = old.get("x-eventstore-catalog", {})
    new_meta = new.get("x-eventstore-catalog", {})
    old_shape = (old_meta.get("shape"), old_meta.get("tag_field"))
    new_shape = (new_meta.get("shape"), new_meta.get("tag_field"))
    if old_shape != new_shape:
        differ.add(
            "*",
            "shape changed",
            f"{old_shape[0]} -> {new_shape[0]}"
            + (f" with tag `{new_shape[1]}`" if new_shape[1] else ""),
        )
    old_events: dict[str, Any] = old["events"]
    new_events: dict[str, Any] = new["events"]
    if old_shape != new_shape:
        tags = {t for t in (old_shape[1], new_shape[1]) if t}
        differ.ignore = {f"{name}.{tag}" for name in (*old_events, *new_events) for tag in tags}
    for name, schema in new_events.items():
        if name not in old_events:
            differ.add(name, "event type added")
        else:
            differ.compare(name, old_events[name], schema)
    for name in old_events:
        if name not in new_events:
            differ.add(name, "event type removed")
    return Diff(catalog_id(old), catalog_id(new), mode, tuple(differ.changes))


# --------------------------------------------------------------------------
# Checking a store
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Coverage:
    change: Change
    migrations: tuple[str, ...]
    """The registered steps that carry data across this change; empty if none."""
    note: str = ""


@dataclass(frozen=True, slots=True)
class HopReport:
    source: str
    target: str
    diff: Diff
    coverage: tuple[Coverage, ...]

    @property
    def uncovered(self) -> tuple[Coverage, ...]:
        return tuple(c for c in self.coverage if not c.migrations)


@dataclass(slots=True)
class CheckReport:
    catalog: str
    rows: int = 0
    generations: Counter[str] = field(default_factory=Counter)
    """Rows per generation found in the store (V0 counted under V0b)."""
    recorded: list[str] = field(default_factory=list)
    """Catalog ids the store has recorded being written with."""
    hops: list[HopReport] = field(default_factory=list)
    undecodable: int = 0

    @property
    def ok(self) -> bool:
        return all(not hop.uncovered for hop in self.hops)

    @property
    def uncovered(self) -> list[tuple[HopReport, Coverage]]:
        return [(hop, c) for hop in self.hops for c in hop.uncovered]

    def raise_if_uncovered(self) -> None:
        """Raise SchemaEvolutionError naming every breaking change without a migration."""
        if not self.ok:
            missing = "; ".join(
                f"{hop.source} -> {hop.target}: {item.change}" for hop, item in self.uncovered
            )
            raise SchemaEvolutionError(f"breaking changes without a migration: {missing}")

    def lines(self) -> list[str]:
        gens = ", ".join(f"{g}: {n}" for g, n in sorted(self.generations.items())) or "none"
        out = [f"store holds {self.rows} rows ({gens}); code catalog {self.catalog}"]
        if self.recorded:
            out.append(f"written with catalogs: {', '.join(self.recorded)}")
        if self.undecodable:
            out.append(f"{self.undecodable} rows could not be decoded (see `eventstore verify`)")
        for hop in self.hops:
            out.append(f"{hop.source} -> {hop.target}: {hop.diff.classification}")
            additive = sum(1 for c in hop.diff.changes if c.severity != "breaking")
            if additive:
                out.append(f"  {additive} additive changes (read as they are, no migration needed)")
            for item in hop.coverage:
                if item.change.severity != "breaking":
                    continue
                if item.migrations:
                    how = "covered by " + "; ".join(item.migrations)
                else:
                    how = "NOT COVERED: no registered migration"
                out.append(f"  {item.change}: {how}" + (f" [{item.note}]" if item.note else ""))
        return out


def describe_step(step: Upcaster) -> str:
    """`ActivityFailed V0a->V0b (_v0a_to_v0b, typed)`"""
    name = getattr(step.fn, "__name__", type(step.fn).__name__)
    how = "typed" if step.typed else "json"
    return f"{step.event_type} {step.source}->{step.target} ({name}, {how})"


def _coverage(change: Change, source: str, target: str, registry: UpcasterRegistry) -> Coverage:
    event_type = change.event_type
    lookup = ANY_TYPE if event_type == "*" else event_type
    try:
        steps = registry.path(lookup, source, target)
    except SchemaEvolutionError:
        return Coverage(change, ())
    note = ""
    if event_type == "SystemCall":
        note = "legacy SystemCall has no V1 form: it stays a SystemCall"
    return Coverage(change, tuple(describe_step(s) for s in steps), note)


def _hops(sources: Iterable[str]) -> list[tuple[str, str]]:
    hops: list[tuple[str, str]] = []
    for source in sources:
        chain = _CHAIN.get(source, (source, CURRENT))
        for a, b in itertools.pairwise(chain):
            if (a, b) not in hops:
                hops.append((a, b))
    return hops


def check(
    store: HistoryStore,
    *,
    registry: UpcasterRegistry | None = None,
    progress: Callable[[int], None] | None = None,
    batch: int = 2000,
) -> CheckReport:
    """Compare the code's catalog with every generation the store holds (streaming)."""
    registry = registry if registry is not None else store.codec.registry
    report = CheckReport(CURRENT)
    codec = store.codec
    for page in store.scan(batch):
        for row in page:
            report.rows += 1
            try:
                found = codec.decode_detailed(
                    row.event_data, instance_id=row.instance_id, execution_id=row.execution_id
                )
            except DecodeError:
                report.undecodable += 1
                continue
            generation = found.generation
            report.generations[Generation.V0B if generation == Generation.V0 else generation] += 1
        if progress is not None:
            progress(len(page))
    catalogs: dict[str, dict[str, Any]] = {}
    for recorded in store.backend.schema_versions():
        report.recorded.append(recorded.version_id)
        try:
            catalogs[recorded.version_id] = json.loads(recorded.catalog)
        except ValueError:
            continue
    sources = [g for g in ("V0a", "V0b") if report.generations.get(g)]
    sources += [c for c in report.recorded if c != CURRENT]
    for source, target in _hops(sources):
        old = catalogs.get(source) or _catalog_for(source)
        new = generate(target) if target == CURRENT else _catalog_for(target)
        result = diff(old, new)
        coverage = tuple(
            _coverage(
                change,
                _SPECS[source].generation if source in _SPECS else source,
                _SPECS[target].generation,
                registry,
            )
            if change.severity == "breaking"
            else Coverage(change, ("none needed",))
            for change in result.changes
        )
        report.hops.append(HopReport(source, target, result, coverage))
    return report


def _catalog_for(catalog_id: str) -> dict[str, Any]:
    try:
        return shipped_catalog(catalog_id)
    except (FileNotFoundError, SchemaEvolutionError):
        return generate(catalog_id)


def require_compatible(store: HistoryStore, **options: Any) -> CheckReport:
    """`check`, raising SchemaEvolutionError when a breaking change has no migration."""
    report = check(store, **options)
    report.raise_if_uncovered()
    return report


# --------------------------------------------------------------------------
# Recording the catalog a store is written with
# --------------------------------------------------------------------------


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
    versions = store.backend.schema_versions()
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
    with store.backend.writing() as writer:
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
    for row in store.backend.schema_versions():
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
    with store.backend.writing() as writer:
        writer.ensure_evolution_tables()
        writer.set_schema_metadata(version_id, json.dumps(metadata, sort_keys=True))
