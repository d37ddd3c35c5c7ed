"""Checking a store against the code's catalog.

`check` compares the code's catalog with every generation a store actually
holds (and every catalog the store was written with), hop by hop along the
chain, and names the registered migrations (`eventstore.codec.upcasting`) that
cover each breaking change; `require_compatible` raises SchemaEvolutionError
when one has none.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..codec import Generation
from ..codec.upcasting import ANY_TYPE, Upcaster, UpcasterRegistry
from ..errors import DecodeError, SchemaEvolutionError
from ..store.protocol import WindowCounts
from .catalogs import CHAIN, CURRENT, SPECS, catalog_hash, generate, shipped_catalog
from .diff import Change, Diff, diff

if TYPE_CHECKING:
    from ..store import HistoryStore

__all__ = ["CheckReport", "Coverage", "HopReport", "check", "describe_step", "require_compatible"]


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
    """Rows per generation (the codec's classifier) among the rows that pass the
    store's row check; the others are counted in `undecodable`."""
    recorded: list[str] = field(default_factory=list)
    """Catalog ids the store has recorded being written with."""
    hops: list[HopReport] = field(default_factory=list)
    undecodable: int = 0
    window: WindowCounts | None = None
    """The dual-write window (write generation, rows with a shadow form); None
    when the store cannot keep one."""

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
        out += window_lines(self.window)
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


def window_lines(window: WindowCounts | None) -> list[str]:
    """The dual-write window in `schema check`'s words (nothing when none was ever opened)."""
    if window is None or window.generation is None:
        return []
    state = "dual-write window open" if window.generation != CURRENT else "cut over"
    return [
        f"write generation: {window.generation} ({state})",
        f"  {window.shadowed} rows with a shadow form ({window.pending} not cut over yet),"
        f" {window.total - window.shadowed} without",
    ]


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
        chain = CHAIN.get(source, (source, CURRENT))
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
    for page in store.scan(batch):
        for row in page:
            report.rows += 1
            try:  # the store's one row check, so a row read refuses is not healthy here
                found = store.decode_raw(row)
            except DecodeError:
                report.undecodable += 1
                continue
            report.generations[found.generation] += 1
        if progress is not None:
            progress(len(page))
    report.window = store.evolution.window_counts()
    catalogs = _recorded_catalogs(store, report)
    # A legacy row without a failure field (V0) reads as V0b: it takes the
    # V0b -> V1 hop.
    sources = [g for g in ("V0a", "V0b") if report.generations.get(g)]
    if report.generations.get(Generation.V0) and "V0b" not in sources:
        sources.append("V0b")
    sources += [c for c in report.recorded if c != CURRENT]
    for source, target in _hops(sources):
        old = catalogs.get(source) or _catalog_for(source)
        new = generate(target) if target == CURRENT else _catalog_for(target)
        result = diff(old, new)
        coverage = tuple(
            _coverage(
                change,
                SPECS[source].generation if source in SPECS else source,
                SPECS[target].generation,
                registry,
            )
            if change.severity == "breaking"
            else Coverage(change, ("none needed",))
            for change in result.changes
        )
        report.hops.append(HopReport(source, target, result, coverage))
    return report


def _recorded_catalogs(store: HistoryStore, report: CheckReport) -> dict[str, dict[str, Any]]:
    """The catalogs the store recorded, by id; a `V1` recorded by an older
    release (before the phase-2 metadata, say) is named by its first use, so
    that its hop to the code's V1 is classified like any other."""
    current_hash = catalog_hash(generate(CURRENT))
    catalogs: dict[str, dict[str, Any]] = {}
    for recorded in store.evolution.schema_versions():
        version_id = recorded.version_id
        if version_id == CURRENT and recorded.hash != current_hash:
            version_id = f"{CURRENT} as recorded {recorded.first_used_at}"
        report.recorded.append(version_id)
        try:
            catalogs[version_id] = json.loads(recorded.catalog)
        except ValueError:
            continue
    return catalogs


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
