"""Legacy rows read straight through their body: the read route's common case.

A stored V0 row is `{"TypeName":{...}}`. `Codec.decode` reads it through a
one-field envelope struct, then takes the event out and fills the identity the
row gives. On the read route the row's `event_type` column names the type
already, so when the row's bytes open with exactly that key and close with the
envelope's brace, the body between them is decoded directly with the type's
own decoder: the same msgspec type, the same validation and the same event as
the envelope's field (whitespace around the body reads the same either way; a
second key, a missing brace or anything else after the body fails the body's
decode, and the row then takes the full route, which explains it). The key is
compared as bytes, so an escaped spelling (`{"\\u0041ctivity...`) never
matches and reads exactly as the row check's byte sniff reads it.

Only types whose registered V0b -> V1 path is the built-in one get a plan
(`Codec._row_plan`); the registry's change listener drops them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from ..events import Event
from .decoders import _DECODE_ERRORS
from .legacy import _FAILURE_TYPES, FailureEvent, LegacyFailure, v1_failure
from .wire import _dec_hook

_force_setattr: Final = msgspec.structs.force_setattr

CLOSING: Final = ord("}")


class RowPlan:
    """How a legacy row of one type is read on the read route."""

    __slots__ = ("cut", "decode", "failure", "prefix")

    def __init__(self, type_name: str, snapshot: type[msgspec.Struct]) -> None:
        self.prefix = b'{"' + type_name.encode() + b'":'
        """The row's opening bytes: the envelope's brace and its one key."""
        self.cut = len(self.prefix)
        self.decode: Callable[[bytes | str], Any] = msgspec.json.Decoder(
            snapshot, dec_hook=_dec_hook
        ).decode
        self.failure = _FAILURE_TYPES.get(type_name)
        """The V1 class of a failure type (its snapshot is a LegacyFailure)."""

    def read(self, data: bytes, instance_id: str, execution_id: int) -> Event | None:
        """The row's event, or None when it is not the common case (the caller
        then reads it through `Codec.decode`, which explains what is wrong).

        The caller has checked `data[:cut] == prefix` and the closing brace.
        """
        try:
            body = self.decode(data[self.cut : -1])
        except _DECODE_ERRORS:
            return None
        if self.failure is None:
            # The built-in V0b -> V1 step (`legacy._fill_context`), in place:
            # the decoder created the event a moment ago and nothing else holds it.
            _force_setattr(body, "instance_id", instance_id)
            _force_setattr(body, "execution_id", execution_id)
            return body  # type: ignore[no-any-return]
        return self._failure(self.failure, body, instance_id, execution_id)

    @staticmethod
    def _failure(
        kind: type[FailureEvent], body: LegacyFailure, instance_id: str, execution_id: int
    ) -> Event | None:
        # V0b (structured details) by the built-in step (`legacy.v1_failure`); a
        # V0a failure (`error` text) takes the full route and its extra hop.
        if isinstance(body.error, str):
            return None
        return v1_failure(kind, body, instance_id, execution_id)


class _NoPlan:
    """What a type without a plan compares as: no row opens with None."""

    cut = 0
    prefix = None
    decode = None


NO_PLAN: Final = _NoPlan()
