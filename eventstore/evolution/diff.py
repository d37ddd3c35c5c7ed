"""Classifying the change between two catalogs.

`diff` classifies the change the way schema registries do for readers of old
data (BACKWARD): a new optional field or event type is `additive`; a new
required field, a removed field or event type, a changed type or a removed
enum variant is `breaking`; documentation alone is `identical`.
`mode="full"` also requires old readers to read new data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..errors import SchemaEvolutionError
from .catalogs import catalog_id, validate_catalog

__all__ = ["Change", "Diff", "Mode", "Severity", "diff"]

Severity = Literal["identical", "additive", "breaking"]
Mode = Literal["backward", "full"]
_RANK: Final[dict[str, int]] = {"identical": 0, "additive": 1, "breaking": 2}
_SEVERITIES: Final[tuple[Severity, ...]] = ("identical", "additive", "breaking")


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
        tagged = bool(old.get("x-externally-tagged")) and bool(new.get("x-externally-tagged"))
        self._properties(path, old, new, tagged)
        rest_old = {k: v for k, v in old.items() if k not in {"properties", "required", *_DOC_KEYS}}
        rest_new = {k: v for k, v in new.items() if k not in {"properties", "required", *_DOC_KEYS}}
        if self._strip(rest_old, self.old_defs) != self._strip(rest_new, self.new_defs):
            self.add(path, "type changed", "object constraints differ")
        for key in ("title", "description"):
            if old.get(key) != new.get(key):
                self.add(path, "documentation changed", key)

    def _properties(
        self, path: str, old: dict[str, Any], new: dict[str, Any], tagged: bool
    ) -> None:
        """Fields (or, for an externally tagged enum, variants) added, removed, changed."""
        old_props: dict[str, Any] = old.get("properties", {})
        new_props: dict[str, Any] = new.get("properties", {})
        old_req = set(old.get("required", []))
        new_req = set(new.get("required", []))
        for name, schema in new_props.items():
            where = f"{path}.{name}"
            if where in self.ignore:
                continue
            if name not in old_props:
                self._presence(path, name, "added", tagged, name in new_req)
                continue
            self.compare(where, old_props[name], schema)
            if not tagged and (name in new_req) != (name in old_req):
                self.add(where, "field became " + ("required" if name in new_req else "optional"))
        for name in old_props:
            if name not in new_props and f"{path}.{name}" not in self.ignore:
                self._presence(path, name, "removed", tagged, name in old_req)

    def _presence(self, path: str, name: str, change: str, tagged: bool, required: bool) -> None:
        if tagged:
            self.add(path, f"enum variant {change}", f"variant {name}")
        else:
            self.add(f"{path}.{name}", f"{'required' if required else 'optional'} field {change}")


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def diff(old: dict[str, Any], new: dict[str, Any], *, mode: Mode = "backward") -> Diff:
    """Classify the change from catalog `old` to catalog `new` (see the module docstring)."""
    validate_catalog(old, "old catalog")
    validate_catalog(new, "new catalog")
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
