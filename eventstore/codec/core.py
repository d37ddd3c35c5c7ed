"""The Codec: one decode path for every generation, and the duroxide-exact V1 encoder."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Final, cast

import msgspec

from .. import events as ev
from ..errors import DecodeError, RowDecodeError
from ..events import ErrorDetails, Event, KnownEvent, UnknownEvent
from .decoders import (
    _DECODE_ERRORS,
    _ENCODER,
    _ENVELOPES,
    _V1_DECODER,
    Decoded,
    _LegacyPlan,
)
from .generation import Generation, legacy_shaped, plain_lines
from .legacy import (
    _FAILURE_TYPES,
    LegacyFailure,
    _failure_to_v1,
    _fill_context,
    _fill_identity,
    _v0_snapshot_type,
    builtin_registry,
)
from .legacy_rows import RowPlan
from .row_route import decode_rows
from .rows import _force_setattr, reconcile_row
from .unknown import _json_object, _unknown
from .upcasting import UpcastContext, UpcasterRegistry

_EVENT_ID: Final = operator.attrgetter("event_id")
_EVENT_TYPE: Final = operator.attrgetter("event_type")
_INSTANCE_ID: Final = operator.attrgetter("instance_id")
_EXECUTION_ID: Final = operator.attrgetter("execution_id")

DEFAULT_MAX_EVENT_BYTES: Final = 16 * 1024 * 1024
"""Largest serialized event accepted on read or append (configurable per Codec)."""


class Codec:
    """Decoding and encoding, with a migration registry and a size limit.

    The module-level `decode`, `encode` and `detect_version` use a default
    Codec; a store or an embedding runtime may build its own.
    """

    def __init__(
        self,
        *,
        registry: UpcasterRegistry | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.registry = registry if registry is not None else builtin_registry()
        self.max_event_bytes = max_event_bytes
        self._plans: dict[str | bytes, _LegacyPlan] = {}
        self._row_plans: dict[str, RowPlan] = {}
        """Legacy types read straight through their body on the read route
        (`legacy_rows`, `row_route`), by type name; only those upcast by the
        built-in step. Failures (a LegacyFailure body) are kept apart."""
        self._failure_plans: dict[str, RowPlan] = {}
        self.registry.on_change(self._plans.clear)
        self.registry.on_change(self._row_plans.clear)
        self.registry.on_change(self._failure_plans.clear)

    # -- decoding ----------------------------------------------------------
    #
    # The hot path is `decode`: one length check, a one-byte look at the first
    # key (V1 keys are snake_case, legacy variant keys CamelCase), then either
    # one typed msgspec decode (V1) or an envelope decode plus the compiled
    # upcaster of that legacy type. Everything unusual (odd whitespace, unknown
    # types, invalid data) falls through to `_slow`, which explains or keeps it.

    def decode(
        self,
        data: bytes | str,
        *,
        instance_id: str | None = None,
        execution_id: int | None = None,
    ) -> Event:
        """Decode an event of any generation (see the module docstring)."""
        if len(data) > self.max_event_bytes:
            raise self._too_large(data)
        if not legacy_shaped(data):
            try:
                return _V1_DECODER.decode(data)
            except _DECODE_ERRORS as exc:
                return self._slow(data, exc, instance_id, execution_id).event
        # Legacy, inlined for the common case (a plan exists and the type is not
        # a failure); everything else takes the full path, which also explains.
        if isinstance(data, bytes):
            plan = self._plans.get(data[2 : data.find(b'"', 2)])
        else:
            plan = self._plans.get(data[2 : data.find('"', 2)])
        if plan is not None and not plan.is_failure:
            try:
                snapshot = getattr(plan.decoder.decode(data), plan.type_name)
                if plan.upgrade is _fill_context:  # the built-in step, without a context
                    return _fill_identity(snapshot, instance_id, execution_id)  # type: ignore[no-any-return]
                return plan.upgrade(  # type: ignore[no-any-return]
                    snapshot, UpcastContext(plan.type_name, instance_id, execution_id)
                )
            except (*_DECODE_ERRORS, ValueError, TypeError):
                pass
        return self._decode_legacy(data, instance_id, execution_id, False)  # type: ignore[return-value]

    decode_rows = decode_rows  # the read route row by row (codec/row_route.py)

    def _legacy_row(self, data: bytes | str, instance_id: str, execution_id: int) -> Event | None:
        """`decode` of a legacy row whose identity the row gives, in its common
        case (a plan of the built-in upcast, not a failure), with nothing in
        between: the envelope's decode and the identity set in place. None
        for anything else, which `decode` then reads (and explains) in full.
        """
        if isinstance(data, bytes):
            plan = self._plans.get(data[2 : data.find(b'"', 2)])
        else:
            plan = self._plans.get(data[2 : data.find('"', 2)])
        if plan is None or plan.is_failure or plan.upgrade is not _fill_context:
            return None
        try:
            event: Event = getattr(plan.decoder.decode(data), plan.type_name)
        except (*_DECODE_ERRORS, ValueError, TypeError):
            return None
        _force_setattr(event, "instance_id", instance_id)
        _force_setattr(event, "execution_id", execution_id)
        return event

    def decode_packed(
        self,
        event_ids: list[int],
        event_types: list[str],
        event_data: bytes,
        instance_id: str,
        execution_id: int,
    ) -> list[Event] | None:
        """Decode an execution fetched in one piece (`backend.PackedExecution`).

        The same result as `decode_rows` over its rows: when every line is a
        V1 event, one `decode_lines` call does the whole execution and each
        event is checked against its row's columns; otherwise the lines go
        through `decode_rows`, which upcasts legacy rows and names a bad one
        (RowDecodeError's index is the row's place in `event_ids`). None when
        the data cannot be split into exactly one line per row (a row holding a
        newline): read row by row.
        """
        count = len(event_ids)
        if count == 0:
            return []
        if len(event_types) != count:
            return None
        # One decode_lines for the whole execution when it may be all V1: one
        # line per row and none legacy-shaped (`plain_lines`), and no row
        # exceeds the size limit if the whole does not.
        plain = plain_lines(event_data, count)
        if not plain and event_data.count(b"\n") != count - 1:
            return None
        if plain and len(event_data) <= self.max_event_bytes:
            try:
                events: list[KnownEvent] = _V1_DECODER.decode_lines(event_data)
            except _DECODE_ERRORS:
                events = []
            if len(events) == count:
                for event, event_id, event_type in zip(events, event_ids, event_types, strict=True):
                    if (  # inline for speed
                        event.event_id != event_id
                        or event.event_type != event_type
                        or event.instance_id != instance_id
                        or event.execution_id != execution_id
                    ):
                        # Completed in place when the difference is allowed.
                        problem = reconcile_row(
                            event, event_id, event_type, instance_id, execution_id
                        )
                        if problem is not None:
                            index = next(i for i, e in enumerate(events) if e is event)
                            raise RowDecodeError(index, problem, mismatch=True)
                return cast("list[Event]", events)
        rows = zip(event_ids, event_types, event_data.split(b"\n"), strict=True)
        return self.decode_rows(rows, instance_id, execution_id)

    def decode_feed(
        self,
        instance_ids: list[str],
        execution_ids: list[int],
        event_ids: list[int],
        event_types: list[str],
        event_data: bytes,
    ) -> list[Event] | None:
        """Decode a page of the global feed fetched in one piece
        (`backend.PackedFeed`), or None when the page must be read row by row.

        The fast route only: one line per row (`plain_lines`), every row V1,
        no row too large, and every event agreeing with its row's columns
        exactly, which four whole-list
        comparisons check in C. Anything else (a legacy or unknown row, an
        identity the JSON leaves to its row, a disagreement) returns None, and
        the row path, through the one row check, upcasts, completes or names
        the row.
        """
        if not event_ids:
            return []
        if len(event_data) > self.max_event_bytes or not plain_lines(event_data, len(event_ids)):
            return None  # a row too large, holding a newline, or read as legacy by the row check
        try:
            events: list[KnownEvent] = _V1_DECODER.decode_lines(event_data)
        except _DECODE_ERRORS:
            return None
        if (
            len(events) != len(event_ids)
            or list(map(_EVENT_ID, events)) != event_ids
            or list(map(_EVENT_TYPE, events)) != event_types
            or list(map(_INSTANCE_ID, events)) != instance_ids
            or list(map(_EXECUTION_ID, events)) != execution_ids
        ):
            return None
        return cast("list[Event]", events)

    def decode_detailed(
        self,
        data: bytes | str,
        *,
        instance_id: str | None = None,
        execution_id: int | None = None,
    ) -> Decoded:
        """Like decode, and also say which generation the data was and what it passed.

        This is the one generation classifier: verify, stats, schema check,
        migrate, the metrics exporter and `detect_version` all name a row's
        generation by what this returns.
        """
        if len(data) > self.max_event_bytes:
            raise self._too_large(data)
        if legacy_shaped(data):
            return self._decode_legacy(data, instance_id, execution_id, True)  # type: ignore[return-value]
        try:
            return Decoded(_V1_DECODER.decode(data), Generation.V1)
        except _DECODE_ERRORS as exc:
            return self._slow(data, exc, instance_id, execution_id)

    def detect_version(self, data: bytes | str) -> Generation:
        """The generation of serialized event data (raises DecodeError if it is none)."""
        return self.decode_detailed(data).generation

    def _too_large(self, data: bytes | str) -> DecodeError:
        return DecodeError(
            f"event of {len(data)} bytes exceeds the limit of {self.max_event_bytes}"
        )

    def _plan(self, type_name: str | bytes) -> _LegacyPlan | None:
        name = type_name.decode("utf-8", "replace") if isinstance(type_name, bytes) else type_name
        decoder = _ENVELOPES.get(name)
        if decoder is None:
            return None
        # A legacy event without a failure field reads the same in V0a and
        # V0b, so plans start at V0b; V0a failures add their extra hop.
        upgrade, versions = self.registry.compiled(name, Generation.V0B, Generation.V1)
        plan = _LegacyPlan(name, decoder, upgrade, versions, name in _FAILURE_TYPES)
        # Both spellings of the key, so bytes and str input share the plan.
        self._plans[name] = self._plans[name.encode()] = plan
        if self._builtin_step(name, upgrade):
            plans = self._failure_plans if name in _FAILURE_TYPES else self._row_plans
            plans[name] = RowPlan(name, _v0_snapshot_type(name))
        return plan

    def _builtin_step(self, name: str, upgrade: object) -> bool:
        """Whether the registered V0b -> V1 path of a legacy type is the built-in one."""
        if name not in _FAILURE_TYPES:
            return upgrade is _fill_context
        chain = self.registry.path(name, Generation.V0B, Generation.V1)
        return len(chain) == 1 and chain[0].fn is _failure_to_v1

    def _decode_legacy(
        self,
        data: bytes | str,
        instance_id: str | None,
        execution_id: int | None,
        detailed: bool,
    ) -> Decoded | Event:
        type_key: bytes | str = (
            data[2 : data.find(b'"', 2)] if isinstance(data, bytes) else data[2 : data.find('"', 2)]
        )
        plan = self._plans.get(type_key) or self._plan(type_key)
        if plan is None:
            found = self._slow(data, None, instance_id, execution_id)
            return found if detailed else found.event
        type_name = plan.type_name
        try:
            snapshot = getattr(plan.decoder.decode(data), type_name)
        except _DECODE_ERRORS as exc:
            raise DecodeError(f"invalid legacy {type_name} event: {exc}") from None
        generation = Generation.V0
        upgrade, versions = plan.upgrade, plan.versions
        if type(snapshot) is LegacyFailure:
            if isinstance(snapshot.error, str):
                generation = Generation.V0A
                upgrade, versions = self.registry.compiled(type_name, Generation.V0A, Generation.V1)
            elif isinstance(snapshot.details, ErrorDetails):
                generation = Generation.V0B
            else:
                raise DecodeError(f"legacy {type_name} carries neither `error` nor `details`")
        try:
            event = upgrade(snapshot, UpcastContext(type_name, instance_id, execution_id))
        except (ValueError, TypeError, msgspec.ValidationError) as exc:
            raise DecodeError(f"cannot upcast legacy {type_name} event: {exc}") from None
        return Decoded(event, generation, versions) if detailed else event

    def _slow(
        self,
        data: bytes | str,
        error: Exception | None,
        instance_id: str | None,
        execution_id: int | None,
    ) -> Decoded:
        """Explain why data is not a known event, or keep it as an UnknownEvent."""
        obj = _json_object(data)
        type_name = obj.get("type")
        if type_name is not None:
            return self._slow_tagged(data, obj, type_name, error, instance_id, execution_id)
        if len(obj) != 1:
            raise DecodeError(
                f"not an event: no `type` field and {len(obj)} keys"
                + (f" ({error})" if error else "")
            )
        ((type_name, fields),) = obj.items()
        if type_name in _ENVELOPES and error is not None:
            # A legacy event the one-byte sniff missed (leading whitespace).
            found = self._decode_legacy(_ENCODER.encode(obj), instance_id, execution_id, True)
            assert isinstance(found, Decoded)
            return found
        if not (type_name[:1].isupper() and isinstance(fields, dict)):
            raise DecodeError(
                f"not an event: no `type` field, and `{type_name}` is not a legacy variant"
            )
        return _unknown(data, type_name, fields, Generation.V0, instance_id, execution_id)

    def _slow_tagged(
        self,
        data: bytes | str,
        obj: dict[str, Any],
        type_name: object,
        error: Exception | None,
        instance_id: str | None,
        execution_id: int | None,
    ) -> Decoded:
        """A V1-shaped object (`type` tag): a known type that failed, or an unknown one."""
        if not isinstance(type_name, str):
            raise DecodeError("`type` must be a string")
        if type_name in ev.EVENT_TYPES:
            if error is None:  # sent here by the sniff (an upper-case first key)
                try:
                    return Decoded(_V1_DECODER.decode(data), Generation.V1)
                except _DECODE_ERRORS as exc:
                    error = exc
            raise DecodeError(f"invalid {type_name} event: {error}")
        return _unknown(data, type_name, obj, Generation.V1, instance_id, execution_id)

    # -- encoding ----------------------------------------------------------

    def encode(self, event: Event) -> bytes:
        """Serialize as duroxide's V1 JSON (an UnknownEvent returns its original bytes)."""
        if type(event) is UnknownEvent:
            return event.raw
        return _ENCODER.encode(event)

    def encode_many(self, events: list[Event], *, all_known: bool = False) -> list[bytes]:
        """Encode a batch; `all_known` says the caller checked that no event is
        an UnknownEvent (the append path knows it for free)."""
        encode: Callable[[Any], bytes] = _ENCODER.encode
        if all_known:
            return list(map(encode, events))
        return [e.raw if type(e) is UnknownEvent else encode(e) for e in events]

    def validate_encoded(
        self, events: list[Event], encoded: list[bytes], *, all_known: bool = False
    ) -> None:
        """Check that the serialized batch reads back as exactly the given events.

        msgspec does not check constructor arguments: an event built with a
        wrong type either encodes to JSON the decoder refuses (event_id="2")
        or is silently converted on the way (bytes become base64 text). One
        typed decode of the whole batch and one comparison with what was given
        catch both, so no row is stored that would not read back as written.
        Raises DecodeError naming the event's place in the batch and the field.

        `all_known` (no UnknownEvent, no subclass of a known type) allows the
        fast route: the decode and the comparison of the whole batch in C,
        with the per-event walk below only to explain a failure.
        """
        if all_known:
            # One JSON document per line: msgspec escapes control characters
            # in strings, so each event is exactly one line. No event is
            # larger than the whole batch: one length check for all.
            joined = b"\n".join(encoded)
            if len(joined) <= self.max_event_bytes:
                try:
                    if _V1_DECODER.decode_lines(joined) == events:
                        return
                except _DECODE_ERRORS:
                    pass
        # The slow route, one event at a time: only to say which one and why.
        for index, (event, data) in enumerate(zip(events, encoded, strict=True)):
            if len(data) > self.max_event_bytes:
                raise DecodeError(
                    f"event #{index} of {len(data)} bytes exceeds the limit of "
                    f"{self.max_event_bytes}"
                )
            try:
                read_back = (
                    self.decode(data) if type(event) is UnknownEvent else _V1_DECODER.decode(data)
                )
            except _DECODE_ERRORS as exc:
                raise DecodeError(f"event #{index}: {exc}") from None
            except DecodeError as exc:
                raise DecodeError(f"event #{index}: {exc.message}") from None
            if type(event) is not UnknownEvent and read_back != event:
                field = next(
                    (
                        name
                        for name in event.__struct_fields__
                        if getattr(event, name) != getattr(read_back, name)
                    ),
                    "?",
                )
                raise DecodeError(
                    f"event #{index} (id {event.event_id}): field `{field}` holds a "
                    f"{type(getattr(event, field, None)).__name__}, which does not"
                    " store as its declared type"
                )


DEFAULT_CODEC: Final = Codec()


def decode(
    data: bytes | str, *, instance_id: str | None = None, execution_id: int | None = None
) -> Event:
    """Decode an event of any generation, without a hint.

    V0 events take `instance_id` and `execution_id` from the keyword arguments
    (a store passes the row's values). Raises DecodeError for anything that is
    not an event; an event of unknown type becomes an UnknownEvent.
    """
    return DEFAULT_CODEC.decode(data, instance_id=instance_id, execution_id=execution_id)


def encode(event: Event) -> bytes:
    """Serialize an event as duroxide writes V1."""
    return DEFAULT_CODEC.encode(event)


def detect_version(data: bytes | str) -> Generation:
    """Name the generation of serialized event data: V1, V0a, V0b or V0."""
    return DEFAULT_CODEC.detect_version(data)
