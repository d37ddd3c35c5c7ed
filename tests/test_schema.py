"""Schema catalogs, the compatibility checker, catalog records, and upcasting provenance."""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from eventstore import events as ev
from eventstore.cli import main
from eventstore.codec import Codec, Generation, builtin_registry
from eventstore.codec.upcasting import UpcasterRegistry
from eventstore.errors import SchemaEvolutionError
from eventstore.evolution.schema import (
    CATALOG_IDS,
    CURRENT,
    SchemaEvolution,
    catalog_hash,
    catalog_json,
    check,
    diff,
    generate,
    record_catalog,
    require_compatible,
    shipped_catalog,
)
from eventstore.store import HistoryStore
from eventstore.store.protocol import SchemaVersionRow
from tests.conftest import DUROXIDE_JSONL, V0A_JSONL, V0B_JSONL, StoreFactory

SCHEMAS = Path(__file__).parent.parent / "eventstore" / "evolution" / "schemas"
MIXED_JSONL = V0A_JSONL.parent / "mixed-history.jsonl"


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------
# Catalogs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("catalog_id", CATALOG_IDS)
def test_shipped_catalog_equals_what_the_code_generates(catalog_id: str) -> None:
    shipped = (SCHEMAS / f"{catalog_id}.json").read_text(encoding="utf-8")
    assert shipped == catalog_json(catalog_id), (
        f"eventstore/evolution/schemas/{catalog_id}.json is stale: run scripts/generate_schemas.py"
    )
    assert shipped_catalog(catalog_id) == generate(catalog_id)


def test_v1_catalog_describes_every_v1_type_from_the_msgspec_types() -> None:
    catalog = generate(CURRENT)
    v1_types = set(ev.EVENT_TYPES) - {"SystemCall"}
    assert set(catalog["events"]) == v1_types
    started = catalog["$defs"]["OrchestrationStarted"]
    assert started["properties"]["type"] == {"enum": ["OrchestrationStarted"]}
    assert {"name", "version", "input", "event_id", "type"} <= set(started["required"])
    assert "carry_forward_events" in started["properties"]
    assert "carry_forward_events" not in started["required"]
    details = catalog["$defs"]["ActivityFailed"]["properties"]["details"]
    assert set(details["properties"]) == {
        "Application",
        "Infrastructure",
        "Configuration",
        "Poison",
    }


def test_legacy_catalogs_have_the_legacy_shape_and_failure_fields() -> None:
    v0a, v0b = generate("V0a"), generate("V0b")
    assert v0a["x-eventstore-catalog"]["shape"] == "externally-tagged"
    assert "SystemCall" in v0a["events"] and "KeyValueSet" not in v0a["events"]
    failed_a = v0a["$defs"]["ActivityFailed"]
    failed_b = v0b["$defs"]["ActivityFailed"]
    assert failed_a["properties"]["error"] == {"type": "string"}
    assert "details" not in failed_a["properties"]
    assert "Poison" not in failed_b["properties"]["details"]["properties"]
    assert "type" not in failed_b["properties"]


def test_catalog_hash_is_stable_and_content_based() -> None:
    assert catalog_hash(generate("V1")) == catalog_hash(json.loads(catalog_json("V1")))
    assert catalog_hash(generate("V1")) != catalog_hash(generate("V1-base"))


def test_unknown_catalog_id_is_a_clear_error() -> None:
    with pytest.raises(SchemaEvolutionError, match=r"unknown catalog 'V7'.*V0a"):
        generate("V7")


# --------------------------------------------------------------------------
# Classification of duroxide's real history
# --------------------------------------------------------------------------


def test_v0a_to_v0b_is_breaking_for_the_failure_types() -> None:
    result = diff(generate("V0a"), generate("V0b"))
    assert result.classification == "breaking"
    broken = {(c.path, c.kind) for c in result.breaking}
    assert broken == {
        (f"{t}.{f}", k)
        for t in ("OrchestrationFailed", "ActivityFailed", "SubOrchestrationFailed")
        for f, k in (("error", "required field removed"), ("details", "required field added"))
    }


def test_v0b_to_v1_is_breaking_shape_and_systemcall() -> None:
    result = diff(generate("V0b"), generate("V1"))
    assert result.classification == "breaking"
    kinds = {(c.path, c.kind) for c in result.breaking}
    assert kinds == {("*", "shape changed"), ("SystemCall", "event type removed")}
    added = {c.path for c in result.changes if c.kind == "event type added"}
    assert {"KeyValueSet", "ActivityCancelRequested", "CustomStatusUpdated"} <= added
    assert any(c.kind == "enum variant added" and "Poison" in c.detail for c in result.changes)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("V1-base", "V1-session", {"ActivityScheduled.session_id"}),
        ("V1-session", "V1-tag", {"ActivityScheduled.tag"}),
        ("V1-tag", "V1-carry-forward", {"OrchestrationStarted.carry_forward_events"}),
        (
            "V1-carry-forward",
            "V1-core",
            {
                "OrchestrationStarted.initial_custom_status",
                "ExternalSubscribedPersistent",
                "ExternalEventPersistent",
                "ExternalSubscribedPersistentCancelled",
                "CustomStatusUpdated",
                "KeyValueSet",
                "KeyValueCleared",
                "KeyValuesCleared",
            },
        ),
    ],
)
def test_v1_variants_are_additive(old: str, new: str, expected: set[str]) -> None:
    result = diff(generate(old), generate(new))
    assert result.classification == "additive"
    assert {c.path for c in result.changes} == expected
    assert all(c.severity == "additive" for c in result.changes)
    # Read the other way (a reader that lost them), the same changes break.
    assert diff(generate(new), generate(old)).classification == "breaking"


def test_phase2_metadata_is_additive_field_by_field() -> None:
    """Every phase-2 field is one `optional field added` change from V1-core to V1,
    and nothing else changes (the retry policy's own type is new, not changed)."""
    result = diff(generate("V1-core"), generate("V1"))
    assert result.classification == "additive"
    assert {(c.path, c.kind) for c in result.changes} == {
        (f"{t}.{f}", "optional field added") for t, f in ev.PHASE2_FIELDS if t != "SystemCall"
    }
    assert not result.breaking


def test_new_event_types_break_full_compatibility_but_not_backward() -> None:
    assert diff(generate("V1-tag"), generate("V1-carry-forward"), mode="full").classification == (
        "additive"
    )
    full = diff(generate("V1-carry-forward"), generate("V1"), mode="full")
    assert full.classification == "breaking"
    assert {c.path for c in full.breaking} >= {"KeyValueSet", "CustomStatusUpdated"}


# --------------------------------------------------------------------------
# Diff rules on small catalogs
# --------------------------------------------------------------------------


def tiny(**fields: Any) -> dict[str, Any]:
    """A one-type catalog: Thing with the given properties (name -> (schema, required))."""
    return {
        "x-eventstore-catalog": {"id": "tiny", "shape": "internally-tagged", "tag_field": "type"},
        "events": {"Thing": {"$ref": "#/$defs/Thing"}},
        "$defs": {
            "Thing": {
                "title": "Thing",
                "type": "object",
                "properties": {name: schema for name, (schema, _) in fields.items()},
                "required": [name for name, (_, required) in fields.items() if required],
            }
        },
    }


STR = {"type": "string"}
INT = {"type": "integer"}


@pytest.mark.parametrize(
    ("old", "new", "classification", "kind"),
    [
        (
            tiny(a=(STR, True)),
            tiny(a=(STR, True), b=(STR, False)),
            "additive",
            "optional field added",
        ),
        (
            tiny(a=(STR, True)),
            tiny(a=(STR, True), b=(STR, True)),
            "breaking",
            "required field added",
        ),
        (
            tiny(a=(STR, True), b=(STR, False)),
            tiny(a=(STR, True)),
            "breaking",
            "optional field removed",
        ),
        (tiny(a=(STR, True)), tiny(a=(INT, True)), "breaking", "type changed"),
        (
            tiny(a=({"enum": ["x", "y"]}, True)),
            tiny(a=({"enum": ["x"]}, True)),
            "breaking",
            "enum variant removed",
        ),
        (
            tiny(a=({"enum": ["x"]}, True)),
            tiny(a=({"enum": ["x", "y"]}, True)),
            "additive",
            "enum variant added",
        ),
        (tiny(a=(STR, False)), tiny(a=(STR, True)), "breaking", "field became required"),
        (
            tiny(a=(STR, True)),
            tiny(a=({"type": "string", "description": "the a"}, True)),
            "identical",
            "documentation changed",
        ),
    ],
)
def test_diff_rules(
    old: dict[str, Any], new: dict[str, Any], classification: str, kind: str
) -> None:
    result = diff(old, new)
    assert result.classification == classification
    assert [c.kind for c in result.changes] == [kind]


def test_event_type_added_and_removed() -> None:
    old = tiny(a=(STR, True))
    new = copy.deepcopy(old)
    new["events"]["Other"] = {"type": "object", "properties": {}}
    assert diff(old, new).lines() == ["additive", "additive Other: event type added"]
    assert diff(new, old).lines() == ["breaking", "breaking Other: event type removed"]
    assert diff(old, old).lines() == ["identical"]


# --------------------------------------------------------------------------
# CLI: schema diff / export
# --------------------------------------------------------------------------


def write(tmp_path: Path, name: str, catalog: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(catalog))
    return str(path)


def test_schema_diff_cli_first_line_and_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    base = tiny(a=(STR, True))
    old = write(tmp_path, "old.json", base)
    additive = write(tmp_path, "add.json", tiny(a=(STR, True), b=(STR, False)))
    breaking = write(tmp_path, "break.json", tiny(a=(INT, True)))
    docs = write(tmp_path, "docs.json", tiny(a=({"type": "string", "description": "x"}, True)))

    result = runner.invoke(main, ["schema", "diff", old, docs])
    assert (result.exit_code, result.output.splitlines()[0]) == (0, "identical")
    result = runner.invoke(main, ["schema", "diff", old, additive])
    assert (result.exit_code, result.output.splitlines()) == (
        0,
        ["additive", "additive Thing.b: optional field added"],
    )
    result = runner.invoke(main, ["schema", "diff", old, breaking])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == "breaking"
    assert "Thing.a: type changed" in result.output
    # full mode: an optional field is fine, a new enum value is not.
    enum_old = write(tmp_path, "e1.json", tiny(a=({"enum": ["x"]}, True)))
    enum_new = write(tmp_path, "e2.json", tiny(a=({"enum": ["x", "y"]}, True)))
    assert runner.invoke(main, ["schema", "diff", enum_old, enum_new]).exit_code == 0
    full = runner.invoke(main, ["schema", "diff", "--mode", "full", enum_old, enum_new])
    assert (full.exit_code, full.output.splitlines()[0]) == (1, "breaking")


def test_schema_diff_cli_on_shipped_generations() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["schema", "diff", "V0a", "V0b"])
    assert (result.exit_code, result.output.splitlines()[0]) == (1, "breaking")
    result = runner.invoke(main, ["schema", "diff", "V1-base", "V1"])
    assert (result.exit_code, result.output.splitlines()[0]) == (0, "additive")
    assert "additive ActivityScheduled.session_id: optional field added" in result.output


def test_schema_diff_cli_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = runner.invoke(main, ["schema", "diff", str(bad), "V1"])
    assert result.exit_code == 1
    assert "bad.json" in result.output and "Traceback" not in result.output
    missing = runner.invoke(main, ["schema", "diff", str(tmp_path / "nope.json"), "V1"])
    assert missing.exit_code == 1 and "nope.json" in missing.output
    notcat = tmp_path / "list.json"
    notcat.write_text("[]")
    result = runner.invoke(main, ["schema", "diff", str(notcat), "V1"])
    assert result.exit_code == 1 and "catalog" in result.output


def test_schema_export_prints_the_generated_catalog(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["schema", "export"])
    assert result.exit_code == 0
    assert json.loads(result.output) == generate("V1")
    legacy = runner.invoke(main, ["schema", "export", "--generation", "V0a"])
    assert json.loads(legacy.output)["x-eventstore-catalog"]["id"] == "V0a"
    # an exported catalog diffs as identical against the shipped one
    path = write(tmp_path, "v1.json", json.loads(result.output))
    same = runner.invoke(main, ["schema", "diff", path, "V1"])
    assert (same.exit_code, same.output) == (0, "identical\n")


# --------------------------------------------------------------------------
# schema check against a store
# --------------------------------------------------------------------------


def test_check_names_the_builtin_migrations_for_legacy_rows(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.import_rows(rows_of(MIXED_JSONL))
    report = check(store)
    assert report.ok
    assert report.rows == 139
    assert report.generations["V0a"] > 0 and report.generations["V0b"] > 0
    assert [(h.source, h.target) for h in report.hops] == [("V0a", "V0b"), ("V0b", "V1")]
    first, second = report.hops
    assert first.diff.classification == "breaking" and second.diff.classification == "breaking"
    covered = {str(c.change.path): c.migrations for c in first.coverage}
    assert covered["ActivityFailed.error"] == ("ActivityFailed V0a->V0b (_v0a_to_v0b, typed)",)
    shape = next(c for c in second.coverage if c.change.kind == "shape changed")
    assert shape.migrations == ("* V0b->V1 (_fill_context, typed)",)
    system = next(c for c in second.coverage if c.change.path == "SystemCall")
    assert "no V1 form" in system.note


def test_check_of_a_v1_store_has_nothing_to_cover(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.import_rows(rows_of(DUROXIDE_JSONL))
    report = check(store)
    assert report.ok and report.hops == [] and report.generations == {"V1": 154}


def test_check_fails_when_a_breaking_change_has_no_migration(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.import_rows(rows_of(V0A_JSONL))
    # A registry that knows V0b -> V1 but not V0a -> V0b.
    partial = UpcasterRegistry()
    for step in builtin_registry().steps():
        if step.source == "V0b":
            partial.register(
                step.event_type,
                step.source,
                step.target,
                typed=step.typed,
                source_type=step.source_type,
            )(step.fn)
    report = check(store, registry=partial)
    assert not report.ok
    assert {c.change.path for _, c in report.uncovered} >= {"ActivityFailed.error"}
    with pytest.raises(SchemaEvolutionError, match=r"V0a -> V0b: breaking ActivityFailed\.error"):
        require_compatible(store, registry=partial)
    assert require_compatible(store).ok


def test_check_follows_recorded_catalogs(store_factory: StoreFactory, tmp_path: Path) -> None:
    store = store_factory()
    store.import_rows(rows_of(DUROXIDE_JSONL))
    # The store says it was written with a catalog whose Thing reading is not
    # covered: a required field V1 does not have and no migration for it.
    future = generate("V1")
    future["x-eventstore-catalog"]["id"] = "V2-experimental"
    future["$defs"]["ActivityScheduled"]["properties"]["priority"] = {"type": "integer"}
    future["$defs"]["ActivityScheduled"]["required"].append("priority")
    with store.backend.writing() as writer:
        writer.ensure_evolution_tables()
        writer.record_schema_version(
            SchemaVersionRow(
                "V2-experimental",
                catalog_hash(future),
                "2026-01-01T00:00:00Z",
                json.dumps(future),
                "{}",
            )
        )
    report = check(store)
    assert report.recorded == ["V2-experimental"]
    assert [(h.source, h.target) for h in report.hops] == [("V2-experimental", "V1")]
    assert [str(c.change) for _, c in report.uncovered] == [
        "breaking ActivityScheduled.priority: required field removed"
    ]


def test_schema_check_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    target = str(tmp_path / "s.db")
    assert runner.invoke(main, ["import", target, str(V0B_JSONL)]).exit_code == 0
    result = runner.invoke(main, ["schema", "check", target])
    assert result.exit_code == 0, result.output
    assert "V0b -> V1: breaking" in result.output
    assert "covered by * V0b->V1 (_fill_context, typed)" in result.output
    as_json = json.loads(runner.invoke(main, ["schema", "check", target, "--json"]).output)
    assert as_json["ok"] is True and as_json["hops"][0]["source"] == "V0b"
    # an uncovered recorded catalog makes it fail, in one line, exit 1
    bad = generate("V1")
    bad["x-eventstore-catalog"]["id"] = "Vx"
    bad["events"]["AuditRecorded"] = {"type": "object", "properties": {}}
    con = sqlite3.connect(target)
    con.execute(
        "CREATE TABLE eventstore_schema_versions (version_id TEXT PRIMARY KEY, hash TEXT NOT NULL,"
        " first_used_at TEXT NOT NULL, catalog TEXT NOT NULL, metadata TEXT NOT NULL)"
    )
    con.execute(
        "CREATE TABLE eventstore_migration_log (run_id TEXT, instance_id TEXT, execution_id INT,"
        " first_event_id INT, strategy TEXT, status TEXT, changes TEXT)"
    )
    con.execute(
        "INSERT INTO eventstore_schema_versions VALUES ('Vx', 'h', '2026-01-01', ?, '{}')",
        (json.dumps(bad),),
    )
    con.commit()
    con.close()
    failed = runner.invoke(main, ["schema", "check", target])
    assert failed.exit_code == 1
    assert "Error: breaking changes without a migration: Vx -> V1" in failed.output
    assert "Traceback" not in failed.output


# --------------------------------------------------------------------------
# Recording the catalog a store writes with
# --------------------------------------------------------------------------


def started(instance: str) -> ev.OrchestrationStarted:
    return ev.OrchestrationStarted(event_id=1, name="N", version="1.0.0", input="null")


def test_first_append_records_the_catalog_once(
    store_factory: StoreFactory, backend_name: str
) -> None:
    store = store_factory()
    seen: list[SchemaEvolution] = []
    store.on_schema_evolution(seen.append)
    assert store.backend.schema_versions() == []
    store.append("a", 1, [started("a")])
    store.append("b", 1, [started("b")])
    versions = store.backend.schema_versions()
    assert [v.version_id for v in versions] == [CURRENT]
    assert versions[0].hash == catalog_hash(generate(CURRENT))
    assert json.loads(versions[0].catalog) == generate(CURRENT)
    assert len(seen) == 1 and seen[0].previous is None and seen[0].version_id == CURRENT
    if backend_name == "sqlite-memory":
        return  # a second handle would be another database
    other = store_factory(reopen=store)
    more: list[SchemaEvolution] = []
    other.on_schema_evolution(more.append)
    other.append("c", 1, [started("c")])
    assert more == [] and len(other.backend.schema_versions()) == 1


def test_additive_evolution_is_recorded_and_announced(store_factory: StoreFactory) -> None:
    store = store_factory()
    assert record_catalog(store, "V1-base") is not None
    seen: list[SchemaEvolution] = []
    store.on_schema_evolution(seen.append)
    store.append("a", 1, [started("a")])
    (evolution,) = seen
    assert (evolution.previous, evolution.version_id, evolution.classification) == (
        "V1-base",
        "V1",
        "additive",
    )
    assert "additive ActivityScheduled.session_id: optional field added" in {
        str(c) for c in evolution.changes
    }
    meta = json.loads(store.backend.schema_versions()[-1].metadata)
    assert meta["previous"] == "V1-base" and meta["classification"] == "additive"


def test_recording_never_touches_the_history_table_schema(tmp_path: Path) -> None:
    import eventstore

    target = tmp_path / "s.db"
    with eventstore.open(str(target)) as store:
        before = sqlite3.connect(target).execute("PRAGMA table_info(history)").fetchall()
        store.append("a", 1, [started("a")])
    con = sqlite3.connect(target)
    assert con.execute("PRAGMA table_info(history)").fetchall() == before
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {t for t in tables if t != "history"} == {
        "eventstore_schema_versions",
        "eventstore_migration_runs",
        "eventstore_archive",
        "eventstore_migration_log",
        # the execution catalog, kept by appends (proposals/lifecycle.md)
        "eventstore_executions",
        "eventstore_catalog_state",
    }


# --------------------------------------------------------------------------
# Upcasting: provenance and an embedding runtime's own versions
# --------------------------------------------------------------------------


def test_migrated_from_names_the_versions_passed() -> None:
    codec = Codec()
    v0a_failure = b'{"ActivityFailed":{"event_id":3,"source_event_id":2,"error":"boom"}}'
    found = codec.decode_detailed(v0a_failure, instance_id="i", execution_id=1)
    assert (found.generation, found.migrated_from) == (Generation.V0A, ("V0a", "V0b"))
    assert codec.registry.is_migration_needed("ActivityFailed", "V0a", "V1")
    legacy = b'{"ActivityCompleted":{"event_id":3,"source_event_id":2,"result":"1"}}'
    found = codec.decode_detailed(legacy, instance_id="i", execution_id=1)
    assert (found.generation, found.migrated_from) == (Generation.V0, ("V0b",))
    current = codec.encode(found.event)
    found = codec.decode_detailed(current)
    assert (found.generation, found.migrated_from) == (Generation.V1, ())
    assert not codec.registry.is_migration_needed("ActivityCompleted", "V1", "V1")


class PaymentV2(msgspec.Struct):
    """v2 of a runtime's own event: `amount` renamed to `amount_cents`."""

    order: str
    amount_cents: int
    currency: str = "EUR"


class Money(msgspec.Struct, frozen=True):
    cents: int
    currency: str


class PaymentV3(msgspec.Struct, frozen=True):
    """v3: a structural change, the amount and currency became one Money value."""

    order: str
    total: Money


def test_an_embedding_runtime_registers_its_own_versions() -> None:
    registry = UpcasterRegistry()

    @registry.register("PaymentTaken", "v1", "v2")  # JSON step: rename, default
    def rename(value: dict[str, Any], context: Any) -> dict[str, Any]:
        value = dict(value)
        value["amount_cents"] = value.pop("amount")
        value.setdefault("currency", "EUR")
        return value

    @registry.register("PaymentTaken", "v2", "v3", typed=True, source_type=PaymentV2)
    def restructure(value: PaymentV2, context: Any) -> PaymentV3:
        return PaymentV3(order=value.order, total=Money(value.amount_cents, value.currency))

    stored_v1 = json.loads('{"order": "o-1", "amount": 1250}')
    assert registry.upcast("PaymentTaken", stored_v1, "v1", "v3") == PaymentV3(
        order="o-1", total=Money(1250, "EUR")
    )
    assert stored_v1 == {"order": "o-1", "amount": 1250}  # the input is not changed
    stored_v2 = PaymentV2(order="o-2", amount_cents=5, currency="USD")
    assert registry.upcast("PaymentTaken", stored_v2, "v2", "v3").total == Money(5, "USD")
    assert [s.source for s in registry.path("PaymentTaken", "v1", "v3")] == ["v1", "v2"]
    assert registry.is_migration_needed("PaymentTaken", "v1", "v3")
    assert not registry.is_migration_needed("PaymentTaken", "v3", "v3")
    with pytest.raises(SchemaEvolutionError, match="no migration path for PaymentTaken"):
        registry.is_migration_needed("PaymentTaken", "v3", "v1")
    _, versions = registry.compiled("PaymentTaken", "v1", "v3")
    assert versions == ("v1", "v2")


def test_store_with_custom_registry_still_reads_legacy(store_factory: StoreFactory) -> None:
    registry = builtin_registry()
    calls: list[str] = []

    @registry.register("TimerFired", "V0b", "V1", typed=True)
    def timer(value: Any, context: Any) -> Any:
        calls.append(context.event_type)
        msgspec.structs.force_setattr(value, "instance_id", context.instance_id)
        msgspec.structs.force_setattr(value, "execution_id", context.execution_id)
        return value

    store: HistoryStore = store_factory(codec=Codec(registry=registry))
    store.import_rows(rows_of(V0B_JSONL))
    timers = [r for r in rows_of(V0B_JSONL) if r["event_type"] == "TimerFired"]
    instance = timers[0]["instance_id"]
    events = store.read(instance, timers[0]["execution_id"])
    assert any(type(e) is ev.TimerFired for e in events)
    assert "TimerFired" in calls


def test_catalog_is_recorded_inside_the_runtimes_transaction(store_factory: StoreFactory) -> None:
    store = store_factory()
    seen: list[SchemaEvolution] = []
    store.on_schema_evolution(seen.append)
    with store.transaction() as tx:
        tx.append("a", 1, [started("a")])
    assert [v.version_id for v in store.backend.schema_versions()] == [CURRENT]
    assert len(seen) == 1 and store.read("a")[0].event_id == 1
