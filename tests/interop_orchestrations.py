"""Orchestrations and a runtime harness for the interop tests (tests/test_interop.py).

Everything here drives the real duroxide runtime (the `duroxide` package from
the `dev` extra): its Rust core writes the history rows that eventstore then
reads, and reads the rows that eventstore writes. The orchestrations cover
every kind of event the runtime records: activities (plain, failing, retried,
on a session, tagged), timers, external and queued events, sub-orchestrations
(completing and failing), detached orchestrations, continue-as-new (with
queued messages carried forward), cancellation, custom status, the KV store
and the system calls.

The runtime always runs in a child process (`in_runtime_process`), never in
the test process. duroxide's compiled core carries its own copy of SQLite;
two SQLite libraries in one process do not see each other's POSIX locks, and
closing a connection in one drops the other's locks on the same file (SQLite's
"multiple copies of SQLite in one process" hazard). The tests hit it as
"disk I/O error" (SQLITE_IOERR_SHORT_READ) when the test process opened the
same file with Python's sqlite3 while a provider was open. Between processes
the locks work, which is also how a runtime and eventstore share a database
in production.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

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


def resumable(ctx: Any, value: Any) -> Generator[Any, Any, Any]:
    """Several turns (an activity, a caught failure, a timer), then waits for "Go"."""
    first = yield ctx.schedule_activity("Work", value)
    recovered = False
    try:
        yield ctx.schedule_activity("Flaky", value)
    except Exception:
        recovered = True
    yield ctx.schedule_timer(1)
    go = yield ctx.wait_for_event("Go")
    second = yield ctx.schedule_activity("Work", go)
    return {"first": first["echo"], "recovered": recovered, "second": second["echo"]}


ORCHESTRATIONS: dict[str, Orchestration] = {
    "Resumable": resumable,
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
# The runtime harness (used inside the child process)
# --------------------------------------------------------------------------

Key = tuple[str, int]
"""(instance_id, execution_id)"""
View = tuple[str, int, "int | None", int, Any]
"""One event as duroxide's Python client shows it: kind, event_id,
source_event_id, timestamp_ms and the normalized `data` (None when absent)."""


def provider_url(path: Path) -> str:
    """duroxide's SQLite URL for a file, created when absent."""
    return f"sqlite:{path}?mode=rwc"


def open_provider(target: str) -> Any:
    """Open a duroxide provider, which creates or migrates duroxide's schema.

    `target` is a SQLite file path or a `postgresql://` URL (public schema).
    """
    if target.startswith(("postgresql://", "postgres://")):
        return duroxide.PostgresProvider.connect(target)
    return duroxide.SqliteProvider.open(provider_url(Path(target)))


def runtime_options(max_attempts: int | None = None) -> Any:
    """Fast polling; workers that also take the GPU-tagged activity.

    `max_attempts` bounds how often the runtime retries a message it cannot
    process before it poisons it (duroxide's default is 10, a second apart).
    """
    return duroxide.RuntimeOptions(
        dispatcher_poll_interval_ms=5,
        log_level="error",
        worker_tag_filter=duroxide.TagFilter.default_and([GPU_TAG]),
        max_attempts=max_attempts,
    )


def normalized(data: str | None) -> Any:
    """`Event.data` for comparison: parsed when it is JSON, else the text itself.

    duroxide's client builds `data` by splicing the stored payload strings into
    a JSON object, so a payload that is not JSON (a system call's empty input,
    a GUID result) gives text that is not JSON either.
    """
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data


def view_of(event: Any) -> View:
    return (
        event.kind,
        event.event_id,
        event.source_event_id,
        event.timestamp_ms,
        normalized(event.data),
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
        wait_until(
            lambda: any(
                e.kind == event_type
                for x in self.client.list_executions(instance_id)
                for e in self.client.read_execution_history(instance_id, x)
            ),
            f"{instance_id} never recorded {event_type}",
        )


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)


@contextlib.contextmanager
def running(target: str, *, max_attempts: int | None = None) -> Iterator[Harness]:
    """A started duroxide runtime on `target` (see open_provider), shut down after."""
    provider = open_provider(target)
    runtime = duroxide.Runtime(provider, runtime_options(max_attempts))
    for name, fn in ACTIVITIES.items():
        runtime.register_activity(name, fn)
    for name, orchestration in ORCHESTRATIONS.items():
        runtime.register_orchestration(name, orchestration)
    runtime.start()
    try:
        yield Harness(provider, runtime, duroxide.Client(provider))
    finally:
        runtime.shutdown(2000)


# --------------------------------------------------------------------------
# Jobs: what the child process does; arguments and results are plain data
# --------------------------------------------------------------------------

T = TypeVar("T")


def in_runtime_process(job: Callable[..., T], *args: Any, timeout: float = 120) -> T:
    """Run `job(*args)` in a fresh child process (see the module docstring).

    The job's exception, if any, is raised here; a job still running after
    `timeout` seconds is killed and TimeoutError raised.
    """
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(processes=1)
    try:
        result: T = pool.apply_async(job, args).get(timeout)
    except multiprocessing.TimeoutError:
        raise TimeoutError(f"{job.__name__} did not finish in {timeout} s") from None
    finally:
        pool.terminate()
        pool.join()
    return result


@dataclass(frozen=True)
class Outcome:
    status: str
    output: Any


@dataclass
class Reading:
    """What duroxide's client reads from a database."""

    instances: list[str] = field(default_factory=list)
    """From `list_all_instances` (duroxide's own `instances` table)."""
    executions: dict[str, list[int]] = field(default_factory=dict)
    """instance -> `list_executions` (duroxide's own `executions` table)."""
    views: dict[Key, list[View]] = field(default_factory=dict)
    """`read_execution_history` of every execution read."""
    errors: dict[Key, str] = field(default_factory=dict)
    """Executions whose history the client refused, with its message."""


def read_with_client(client: Any, keys: list[Key] | None = None) -> Reading:
    """Read every execution duroxide lists (or the given ones) with its client."""
    reading = Reading(instances=sorted(client.list_all_instances()))
    wanted = set(keys or [])
    for instance_id in sorted(reading.instances + sorted({k[0] for k in wanted})):
        if instance_id not in reading.executions:
            reading.executions[instance_id] = sorted(client.list_executions(instance_id))
            wanted.update((instance_id, x) for x in reading.executions[instance_id])
    for key in sorted(wanted):
        try:
            reading.views[key] = [view_of(e) for e in client.read_execution_history(*key)]
        except RuntimeError as exc:
            reading.errors[key] = str(exc)
    return reading


def job_read(target: str, keys: list[Key] | None = None) -> Reading:
    """Open the database with duroxide's provider (running its migrations) and read."""
    return read_with_client(duroxide.Client(open_provider(target)), keys)


def job_corpus(target: str, tag: str) -> tuple[dict[str, Outcome], Reading]:
    """Start one instance of every pattern, drive each to its end; the outcomes
    and everything the runtime's client then reads."""
    with running(target) as harness:
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
        waited = [i for i, _, _ in starts] + [
            f"parent-{tag}-failing",
            f"parent-{tag}-detached",
            f"racer-{tag}-sleeper",
        ]
        outcomes: dict[str, Outcome] = {}
        for instance_id in waited:
            result = harness.wait(instance_id)
            outcomes[instance_id] = Outcome(result.status, result.output)
        return outcomes, read_with_client(client)


def job_start_waiting(target: str, instance_id: str) -> None:
    """Start a Resumable orchestration and return once it waits for "Go"."""
    with running(target) as harness:
        harness.client.start_orchestration(instance_id, "Resumable", "r")
        harness.wait_for_subscription(instance_id, "ExternalSubscribed")


@dataclass
class Resumption:
    read_error: str | None
    """What `read_execution_history` said before the event was raised."""
    status: str
    output: Any = None
    poisoned: int = 0
    """The runtime's count of messages it gave up on."""
    executions: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)


def job_raise_and_wait(
    target: str, instance_id: str, max_attempts: int | None = None
) -> Resumption:
    """Raise "Go" and wait: for the orchestration to finish, or (when the runtime
    cannot load its history) for the runtime to give up on the message."""
    with running(target, max_attempts=max_attempts) as harness:
        client = harness.client
        try:
            client.read_execution_history(instance_id, 1)
            read_error = None
        except RuntimeError as exc:
            read_error = str(exc)
        client.raise_event(instance_id, "Go", "go")
        if read_error is not None:
            wait_until(
                lambda: harness.runtime.metrics_snapshot().orch_poison >= 1,
                "the runtime never gave up on the raised event",
            )
            status = client.get_instance_info(instance_id).status
            return Resumption(read_error, status, poisoned=1)
        result = harness.wait(instance_id)
        return Resumption(
            read_error,
            result.status,
            result.output,
            harness.runtime.metrics_snapshot().orch_poison,
            sorted(client.list_executions(instance_id)),
            [e.kind for e in client.read_execution_history(instance_id, 1)],
        )


def job_maintenance(target: str, delete: str, prune: str, keep_last: int) -> tuple[int, int]:
    """duroxide's own maintenance: delete one instance, prune another's old
    executions. Returns (events deleted by the delete, events deleted by the prune)."""
    client = duroxide.Client(open_provider(target))
    deleted = client.delete_instance(delete, False)
    pruned = client.prune_executions(prune, duroxide.PruneOptions(keep_last=keep_last))
    return int(deleted.events_deleted), int(pruned.events_deleted)
