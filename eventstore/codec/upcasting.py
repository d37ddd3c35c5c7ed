"""Upcasters: registered conversions of an event from one schema version to the next.

The built-in legacy chain (V0a -> V0b -> V1, see `eventstore.codec`) is expressed
with this registry, and an embedding runtime registers its own steps the same
way. A step works either on the decoded JSON object (`typed=False`: renames,
defaults, moved fields) or on typed snapshots of both versions (`typed=True`:
structural changes); a chain may mix both, and values are converted between
the two forms where a step needs the other one.

Paths across several hops are found breadth-first and cached; a step
registered for one event type wins over a step registered for every type
(`event_type="*"`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from ..errors import SchemaEvolutionError

__all__ = ["ANY_TYPE", "Upcaster", "UpcastContext", "UpcasterRegistry", "Upgrade"]

ANY_TYPE: Final = "*"


class UpcastContext(msgspec.Struct, frozen=True, gc=False):
    """What an upcaster may need beyond the event: where the row was stored."""

    event_type: str
    instance_id: str | None = None
    execution_id: int | None = None


Upgrade = Callable[[Any, UpcastContext], Any]


@dataclass(frozen=True, slots=True)
class Upcaster:
    event_type: str
    source: str
    target: str
    fn: Upgrade
    typed: bool
    source_type: type | None = None

    def __call__(self, value: Any, context: UpcastContext) -> Any:
        if self.typed:
            if self.source_type is not None and not isinstance(value, self.source_type):
                value = msgspec.convert(value, self.source_type)
        elif isinstance(value, msgspec.Struct):
            value = msgspec.to_builtins(value)
        return self.fn(value, context)


class UpcasterRegistry:
    """Schema versions of event types and the steps between them."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, str], list[Upcaster]] = {}
        self._compiled: dict[tuple[str, str, str], tuple[Upgrade, tuple[str, ...]]] = {}
        self._listeners: list[Callable[[], None]] = []

    def copy(self) -> UpcasterRegistry:
        clone = UpcasterRegistry()
        clone._steps = {key: list(steps) for key, steps in self._steps.items()}
        return clone

    def register(
        self,
        event_type: str,
        source: str,
        target: str,
        *,
        typed: bool = False,
        source_type: type | None = None,
    ) -> Callable[[Upgrade], Upgrade]:
        """Register `fn(value, context) -> value` as the step source -> target.

        `event_type` is a wire type name, or "*" for a step every type takes
        unless it has its own. With `typed=True`, `source_type` (a msgspec
        Struct) is what the step expects; JSON objects are converted to it.
        """
        if source == target:
            raise ValueError("an upcaster must change the version")

        def decorator(fn: Upgrade) -> Upgrade:
            steps = self._steps.setdefault((event_type, source), [])
            steps[:] = [s for s in steps if s.target != target]
            steps.append(Upcaster(event_type, source, target, fn, typed, source_type))
            self._compiled.clear()
            for listener in self._listeners:
                listener()
            return fn

        return decorator

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever a step is registered (codecs drop cached plans)."""
        self._listeners.append(listener)

    def _edges(self, event_type: str, source: str) -> list[Upcaster]:
        own = self._steps.get((event_type, source), [])
        targets = {s.target for s in own}
        shared = [s for s in self._steps.get((ANY_TYPE, source), []) if s.target not in targets]
        return own + shared

    def path(self, event_type: str, source: str, target: str) -> tuple[Upcaster, ...]:
        """The shortest chain of steps from source to target; empty when equal."""
        if source == target:
            return ()
        seen = {source}
        queue: deque[tuple[str, tuple[Upcaster, ...]]] = deque([(source, ())])
        while queue:
            version, steps = queue.popleft()
            for step in self._edges(event_type, version):
                if step.target in seen:
                    continue
                chain = (*steps, step)
                if step.target == target:
                    return chain
                seen.add(step.target)
                queue.append((step.target, chain))
        raise SchemaEvolutionError(f"no migration path for {event_type} from {source} to {target}")

    def is_migration_needed(self, event_type: str, version: str, target: str) -> bool:
        """True when an event of `version` must be upcast to read as `target`.

        False when the versions are equal; raises SchemaEvolutionError when a
        migration is needed but no registered path leads there.
        """
        return bool(self.path(event_type, version, target))

    def compiled(
        self, event_type: str, source: str, target: str
    ) -> tuple[Upgrade, tuple[str, ...]]:
        """One callable for the whole path (cached), and the versions it passes."""
        key = (event_type, source, target)
        found = self._compiled.get(key)
        if found is not None:
            return found
        chain = self.path(event_type, source, target)
        versions = tuple(step.source for step in chain)
        if len(chain) == 1 and chain[0].typed and chain[0].source_type is None:
            fn: Upgrade = chain[0].fn  # the common single typed hop: no wrapper
        else:

            def fn(value: Any, context: UpcastContext) -> Any:
                for step in chain:
                    value = step(value, context)
                return value

        self._compiled[key] = (fn, versions)
        return fn, versions

    def upcast(
        self,
        event_type: str,
        value: Any,
        source: str,
        target: str,
        context: UpcastContext | None = None,
    ) -> Any:
        """Run `value` (a JSON object or a typed snapshot) through the path to `target`.

        An embedding runtime uses this for its own event types: register the
        steps, then upcast each stored value from the version it was written
        in. With no context, steps see only the event type.
        """
        fn, _ = self.compiled(event_type, source, target)
        return fn(value, context if context is not None else UpcastContext(event_type))

    def steps(self) -> list[Upcaster]:
        """Every registered step, in registration order per (type, source)."""
        return [step for steps in self._steps.values() for step in steps]
