"""Run our orchestrations in the real duroxide runtime: `python -m ... DB`.

Used by tests/test_replay_interop.py in a child process. Writes a SQLite
database whose histories the tests then replay.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from tests.orchestrations.corpus import ORCHESTRATIONS
from tests.orchestrations.probes import ACTIVITIES, PROBES

STARTS: list[tuple[str, str, Any]] = [
    ("hello-1", "Hello", "w1"),
    ("fanout-1", "FanOut", 3),
    ("parent-1", "Parent", 1),
    ("looper-1", "Looper", 1),
    ("failing-1", "Failing", 1),
    ("kv-1", "Kv", 1),
    ("mailbox-1", "Mailbox", 1),
    ("probe-values-1", "ProbeValues", None),
    ("probe-status-1", "ProbeStatus", None),
]


def work(ctx: Any, value: Any) -> Any:
    return {"echo": value, "uni": "héllo ✓ \u2028"}


def flaky(ctx: Any, value: Any) -> Any:
    raise ValueError(f"bad input {value!r}")


def main(db: str) -> None:
    from duroxide import (  # type: ignore[import-untyped]
        Client,
        Runtime,
        RuntimeOptions,
        SqliteProvider,
    )

    provider = SqliteProvider.open(f"sqlite:{db}?mode=rwc")
    runtime = Runtime(provider, RuntimeOptions(dispatcher_poll_interval_ms=5, log_level="off"))
    activities: dict[str, Callable[..., Any]] = {"Work": work, "Flaky": flaky, **ACTIVITIES}
    for name, function in activities.items():
        runtime.register_activity(name, function)
    orchestrations: dict[str, Callable[..., Any]] = {**ORCHESTRATIONS, **PROBES}
    for name, function in orchestrations.items():
        runtime.register_orchestration(name, function)
    runtime.start()
    client = Client(provider)
    for instance_id, name, data in STARTS:
        client.start_orchestration(instance_id, name, data)
    client.enqueue_event("mailbox-1", "inbox", "m1")
    client.enqueue_event("mailbox-1", "inbox", {"m": 2})
    for instance_id, _, _ in STARTS:
        result = client.wait_for_orchestration(instance_id, 60_000)
        print(instance_id, result.status)
    runtime.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
