"""Hypothesis: round trips for every event type, and the V0 -> V1 invariants."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore import DecodeError, Generation, decode, detect_version, encode
from eventstore import events as ev
from eventstore.codec import DEFAULT_CODEC

MAX_ID = 2**63 - 1
text = st.text(max_size=40)
ids = st.integers(min_value=0, max_value=MAX_ID)

kinds = st.one_of(
    st.sampled_from(["ActivityFailed", "OrchestrationFailed", "Panicked"]),
    st.builds(ev.Cancelled, reason=text),
)
details = st.one_of(
    st.builds(ev.ApplicationError, kind=kinds, message=text, retryable=st.booleans()),
    st.builds(ev.InfrastructureError, operation=text, message=text, retryable=st.booleans()),
    st.builds(
        ev.ConfigurationError,
        kind=st.one_of(
            st.just("Nondeterminism"), st.builds(ev.MissingVersion, requested_version=text)
        ),
        resource=text,
        message=st.none() | text,
    ),
    st.builds(
        ev.PoisonError,
        attempt_count=st.integers(0, 100),
        max_attempts=st.integers(0, 100),
        message_type=st.one_of(
            st.builds(ev.OrchestrationMessage, instance=text, execution_id=ids),
            st.builds(
                ev.ActivityMessage,
                instance=text,
                execution_id=ids,
                activity_name=text,
                activity_id=ids,
            ),
            st.builds(ev.FailedDeserializationMessage, instance=text, execution_id=ids, error=text),
        ),
        message=text,
    ),
)


def strategy_for(info: mi.Type) -> st.SearchStrategy[Any]:
    """A strategy for one field, from msgspec's own description of the type."""
    if isinstance(info, mi.StrType):
        return text
    if isinstance(info, mi.BoolType):
        return st.booleans()
    if isinstance(info, mi.IntType):
        return st.integers(min_value=info.ge or 0, max_value=info.le or MAX_ID)
    if isinstance(info, mi.NoneType):
        return st.none()
    if isinstance(info, mi.UnionType):
        return st.one_of(*(strategy_for(t) for t in info.types))
    if isinstance(info, mi.CustomType) and info.cls is ev.ErrorDetails:
        return details
    if isinstance(info, mi.VarTupleType):
        return st.lists(strategy_for(info.item_type), max_size=3).map(tuple)
    if isinstance(info, mi.TupleType):
        return st.tuples(*(strategy_for(t) for t in info.item_types))
    if isinstance(info, mi.DictType):  # phase-2 tags: a string map
        return st.dictionaries(
            strategy_for(info.key_type), strategy_for(info.value_type), max_size=3
        )
    if isinstance(info, mi.FloatType):
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(info, mi.StructType):  # phase-2 retry_policy
        return st.builds(
            info.cls,
            **{
                f.name: (st.just(msgspec.UNSET) | strategy_for(f.type))
                if f.default is msgspec.UNSET
                else strategy_for(f.type)
                for f in info.fields
            },
        )
    raise NotImplementedError(info)


def event_strategy(cls: type[ev.EventBase]) -> st.SearchStrategy[ev.Event]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    fields = {
        # msgspec leaves UNSET out of the union and reports it as the default.
        f.name: (st.just(msgspec.UNSET) | strategy_for(f.type))
        if f.default is msgspec.UNSET
        else strategy_for(f.type)
        for f in info.fields
    }
    return st.builds(cls, **fields)  # type: ignore[return-value]


any_event = st.one_of(*(event_strategy(cls) for cls in ev.EVENT_TYPES.values()))


@settings(max_examples=600)
@given(any_event)
def test_encode_decode_round_trip_for_every_type(event: ev.Event) -> None:
    data = encode(event)
    assert decode(data) == event
    assert detect_version(data) is Generation.V1
    # Byte-stable: encoding what was decoded gives the same bytes.
    assert encode(decode(data)) == data


@settings(max_examples=300)
@given(any_event)
def test_str_input_decodes_like_bytes(event: ev.Event) -> None:
    data = encode(event)
    assert decode(data.decode()) == decode(data)


def to_v0(event: ev.Event, generation: str) -> bytes | None:
    """Write an event the way a legacy duroxide would have (None: no V0 form)."""
    wire = json.loads(encode(event))
    event_type = wire.pop("type")
    if event_type not in {
        "OrchestrationStarted", "OrchestrationCompleted", "OrchestrationFailed",
        "ActivityScheduled", "ActivityCompleted", "ActivityFailed", "TimerCreated",
        "TimerFired", "ExternalSubscribed", "ExternalEvent", "OrchestrationChained",
        "SubOrchestrationScheduled", "SubOrchestrationCompleted", "SubOrchestrationFailed",
        "OrchestrationContinuedAsNew", "OrchestrationCancelRequested", "SystemCall",
    }:  # fmt: skip
        return None
    for name in ("instance_id", "timestamp_ms", "duroxide_version"):
        wire.pop(name)
    for name in ("session_id", "tag", "parent_execution_id", "carry_forward_events",
                 "initial_custom_status"):  # fmt: skip
        wire.pop(name, None)
    if generation == "V0a" and "details" in wire:
        wire["error"] = event.details.message  # type: ignore[union-attr]
        del wire["details"]
    return json.dumps({event_type: wire}).encode()


@settings(max_examples=600)
@given(any_event, st.sampled_from(["V0a", "V0b"]), text.filter(bool), st.integers(1, 1000))
def test_v0_reads_as_the_v1_event_minus_what_v0_lacked(
    event: ev.Event, generation: str, instance_id: str, execution_id: int
) -> None:
    legacy = to_v0(event, generation)
    if legacy is None:
        return
    if (
        generation == "V0a"
        and hasattr(event, "details")
        and not isinstance(event.details, ev.ApplicationError)
    ):
        return  # V0a could only say Application errors (as a string)
    decoded = DEFAULT_CODEC.decode_detailed(
        legacy, instance_id=instance_id, execution_id=execution_id
    )
    got = decoded.event
    # Invariants: same type and ids; the row names instance and execution; no
    # timestamp and no version; everything V0 had is kept.
    assert type(got) is type(event)
    assert got.event_id == event.event_id
    assert got.instance_id == instance_id and got.execution_id == execution_id
    assert got.timestamp_ms == 0 and got.duroxide_version == ""
    if hasattr(event, "details"):
        if generation == "V0a":
            assert decoded.generation is Generation.V0A
            assert got.details.message == event.details.message  # type: ignore[attr-defined,union-attr]
            assert got.details.retryable is False  # type: ignore[attr-defined]
        else:
            assert decoded.generation is Generation.V0B
            assert got.details == event.details  # type: ignore[attr-defined]
    else:
        assert decoded.generation is Generation.V0
        expected = msgspec.structs.replace(
            event, instance_id=instance_id, execution_id=execution_id, timestamp_ms=0,
            duroxide_version="",
        )  # fmt: skip
        for name in event.__struct_fields__:
            theirs = getattr(expected, name)
            mine = getattr(got, name)
            assert mine == theirs or mine is msgspec.UNSET, name
    # A V0 event re-encodes as V1 and reads back the same.
    assert decode(encode(got)) == got


@settings(max_examples=1000)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_decode_raises_only_decode_error(data: bytes | str) -> None:
    with contextlib.suppress(DecodeError):
        decode(data)
