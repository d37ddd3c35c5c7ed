"""Orchestrations and a runtime harness for the interop tests (tests/test_interop.py).

Everything here drives the real duroxide runtime (the `duroxide` package from
the `dev` extra): its Rust core writes the history rows that eventstore then
reads, and reads the rows that eventstore writes. The orchestrations cover
every kind of event the runtime records: activities (plain, failing, retried,
on a session, tagged), timers, external and queued events, sub-orchestrations
(completing and failing), detached orchestrations, continue-as-new (with
queued messages carried forward), cancellation, custom status, the KV store
and the system calls.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duroxide  # type: ignore[import-untyped]

Orchestration = Callable[[Any, Any], Generator[Any, Any, Any]]

GPU_TAG = "gpu"
"""The routing tag one activity carries; the test runtime's workers accept it."""

WAIT_MS = 20_000
"""Upper bound for any one orchestration to finish (never reached when healthy)."""


# --------------------------------------------------------------------------
# Activities
# --------------------------------------------------------------------------


def work(ctx: Any, value: Any) -> Any:
    return {"echo": value, "text": "héllo ✓ \u2028"}


def flaky(ctx: Any, value: Any) -> Any:
    raise ValueError(f"bad input {value!r}")


_ATTEMPTS: dict[str, int] = {}


def retried(ctx: Any, key: Any) -> Any:
    """Fails on its first attempt for each key, then succeeds."""
    _ATTEMPTS[str(key)] = _ATTEMPTS.get(str(key), 0) + 1
    if _ATTEMPTS[str(key)] == 1:
        raise RuntimeError("transient failure")
    return _ATTEMPTS[str(key)]


def slow(ctx: Any, value: Any) -> Any:
    """Runs until the runtime cancels it (bounded, so shutdown never hangs)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not ctx.is_cancelled():
        time.sleep(0.005)
    return "slow"


ACTIVITIES: dict[str, Callable[[Any, Any], Any]] = {
    "Work": work,
    "Flaky": flaky,
    "Retried": retried,
    "Slow": slow,
}


# --------------------------------------------------------------------------
# Orchestrations
# --------------------------------------------------------------------------


def activities(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    """Activities of every flavour, a failure caught, timers, custom status."""
    first = yield ctx.schedule_activity("Work", value)
    ctx.set_custom_status("working")
    yield ctx.schedule_timer(5)
    try:
        yield ctx.schedule_activity("Flaky", value)
    except Exception:
        ctx.set_custom_status("recovered")
    on_session = yield ctx.schedule_activity("Work", "s", session_id="session-1")
    tagged = yield ctx.schedule_activity("Work", "t").with_tag(GPU_TAG)
    attempts = yield ctx.schedule_activity_with_retry(
        "Retried", ctx.instance_id, {"max_attempts": 3}
    )
    fan = yield ctx.all([ctx.schedule_activity("Work", i) for i in range(3)])
    ctx.reset_custom_status()
    return {
        "first": first,
        "session": on_session,
        "tagged": tagged,
        "attempts": attempts,
        "fan": len(fan),
    }


def system_calls(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    """The system calls and the KV store, set, read across instances, cleared."""
    guid = yield ctx.new_guid()
    now = yield ctx.utc_now()
    ctx.set_kv_value("k1", "v1")
    ctx.set_kv_value("k2", json.dumps({"n": value}))
    yield ctx.schedule_timer(2)
    seen = yield ctx.get_kv_value_from_instance(ctx.instance_id, "k1")
    ctx.clear_kv_value("k1")
    yield ctx.schedule_timer(2)
    ctx.clear_all_kv_values()
    return {"guid": len(str(guid)), "now": now > 0, "seen": seen}


def waiter(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    """An external event, then a race an (unraised) event loses to a timer."""
    approval = yield ctx.wait_for_event("Approve")
    race = yield ctx.race(ctx.schedule_timer(5), ctx.wait_for_event("Never"))
    return {"approval": approval, "race": race["index"]}


def mailbox(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    """Queued (persistent) events across continue-as-new.

    The first execution waits for "Ready" (the client enqueues two messages
    before raising it), takes one message and continues as new: the runtime
    carries the undelivered message and the custom status forward into the
    next execution's OrchestrationStarted.
    """
    received = list(value)
    if not received:
        yield ctx.wait_for_event("Ready")
    message = yield ctx.dequeue_event("inbox")
    received.append(message)
    if len(received) < 2:
        ctx.set_custom_status(f"received {len(received)}")
        yield ctx.continue_as_new(received)
        return None
    return received


def looper(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    n = int(value)
    yield ctx.schedule_activity("Work", n)
    if n < 2:
        yield ctx.continue_as_new(n + 1)
        return None
    return n


def child(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    result = yield ctx.schedule_activity("Work", value)
    return result


def failing_child(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    yield ctx.schedule_timer(1)
    raise RuntimeError(f"child gave up on {value!r}")


def parent(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    """Sub-orchestrations (one completes, one fails) and a detached start."""
    done = yield ctx.schedule_sub_orchestration("Child", value)
    try:
        yield ctx.schedule_sub_orchestration_with_id(
            "FailingChild", f"{ctx.instance_id}-failing", value
        )
        failed = False
    except Exception:
        failed = True
    yield ctx.start_orchestration("Child", f"{ctx.instance_id}-detached", value)
    return {"child": done, "failed": failed}


def failing(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    yield ctx.schedule_activity("Work", value)
    raise RuntimeError("orchestration gave up")


def sleeper(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    """Waits on a long timer; cancelled by the client or by its parent."""
    yield ctx.schedule_timer(600_000)
    return "late"


def racer(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    """Races a short timer against work that never finishes on its own, so the
    runtime cancels the losers: an activity, a sub-orchestration and a queue
    subscription."""
    slow = yield ctx.race(ctx.schedule_timer(1), ctx.schedule_activity("Slow", value))
    sub = yield ctx.race(
        ctx.schedule_timer(1),
        ctx.schedule_sub_orchestration_with_id("Sleeper", f"{ctx.instance_id}-sleeper", value),
    )
    queue = yield ctx.race(ctx.schedule_timer(1), ctx.dequeue_event("never"))
    return [slow["index"], sub["index"], queue["index"]]


ORCHESTRATIONS: dict[str, Orchestration] = {
    "Activities": activities,
    "SystemCalls": system_calls,
    "Waiter": waiter,
    "Mailbox": mailbox,
    "Looper": looper,
    "Child": child,
    "FailingChild": failing_child,
    "Parent": parent,
    "Failing": failing,
    "Sleeper": sleeper,
    "Racer": racer,
}


# --------------------------------------------------------------------------
# The runtime harness
# --------------------------------------------------------------------------


def provider_url(path: Path) -> str:
    """duroxide's SQLite URL for a file, created when absent."""
    return f"sqlite:{path}?mode=rwc"


def open_provider(path: Path) -> Any:
    """Open (creating, and migrating to duroxide's schema) a SQLite database."""
    return duroxide.SqliteProvider.open(provider_url(path))


def runtime_options() -> Any:
    return duroxide.RuntimeOptions(
        dispatcher_poll_interval_ms=5,
        log_level="error",
        worker_tag_filter=duroxide.TagFilter.default_and([GPU_TAG]),
    )


@dataclass
class Harness:
    provider: Any
    runtime: Any
    client: Any

    def wait(self, instance_id: str) -> Any:
        return self.client.wait_for_orchestration(instance_id, WAIT_MS)

    def wait_for_subscription(self, instance_id: str, event_type: str) -> None:
        """Wait until the instance's history records `event_type` (no fixed sleeps)."""
        deadline = time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline:
            executions = self.client.list_executions(instance_id)
            if executions:
                history = self.client.read_execution_history(instance_id, max(executions))
                if any(e.kind == event_type for e in history):
                    return
            time.sleep(0.01)
        raise TimeoutError(f"{instance_id} never recorded {event_type}")


@contextlib.contextmanager
def running(
    path: Path,
    orchestrations: dict[str, Orchestration] | None = None,
    *,
    provider: Any = None,
) -> Iterator[Harness]:
    """A started duroxide runtime on the SQLite file at `path`, shut down after."""
    provider = provider if provider is not None else open_provider(path)
    runtime = duroxide.Runtime(provider, runtime_options())
    for name, fn in ACTIVITIES.items():
        runtime.register_activity(name, fn)
    for name, orchestration in (orchestrations or ORCHESTRATIONS).items():
        runtime.register_orchestration(name, orchestration)
    runtime.start()
    try:
        yield Harness(provider, runtime, duroxide.Client(provider))
    finally:
        runtime.shutdown(2000)


@dataclass(frozen=True)
class Outcome:
    instance_id: str
    status: str
    output: Any


def run_corpus(harness: Harness, tag: str) -> dict[str, Outcome]:
    """Start one instance of every pattern, drive it to its end, return the outcomes."""
    client = harness.client
    starts = [
        (f"activities-{tag}", "Activities", tag),
        (f"syscalls-{tag}", "SystemCalls", 7),
        (f"waiter-{tag}", "Waiter", None),
        (f"mailbox-{tag}", "Mailbox", []),
        (f"looper-{tag}", "Looper", 0),
        (f"parent-{tag}", "Parent", tag),
        (f"failing-{tag}", "Failing", tag),
        (f"sleeper-{tag}", "Sleeper", None),
        (f"racer-{tag}", "Racer", tag),
    ]
    for instance_id, name, value in starts:
        client.start_orchestration(instance_id, name, value)
    harness.wait_for_subscription(f"waiter-{tag}", "ExternalSubscribed")
    client.raise_event(f"waiter-{tag}", "Approve", {"by": "ops"})
    harness.wait_for_subscription(f"mailbox-{tag}", "ExternalSubscribed")
    client.enqueue_event(f"mailbox-{tag}", "inbox", "m1")
    client.enqueue_event(f"mailbox-{tag}", "inbox", "m2")
    client.raise_event(f"mailbox-{tag}", "Ready", None)
    harness.wait_for_subscription(f"sleeper-{tag}", "TimerCreated")
    client.cancel_instance(f"sleeper-{tag}", "operator cancelled")
    outcomes: dict[str, Outcome] = {}
    waited = [i for i, _, _ in starts] + [
        f"parent-{tag}-failing",
        f"parent-{tag}-detached",
        f"racer-{tag}-sleeper",
    ]
    for instance_id in waited:
        result = harness.wait(instance_id)
        outcomes[instance_id] = Outcome(instance_id, result.status, result.output)
    return outcomes
