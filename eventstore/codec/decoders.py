"""The msgspec decoders and encoder every codec shares, and what decoding yields."""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import Struct

from .. import events as ev
from ..events import Event, KnownEvent
from .generation import Generation
from .legacy import _V0_TYPES, _v0_snapshot_type
from .upcasting import Upgrade
from .wire import _dec_hook, _enc_hook


class Decoded(Struct, frozen=True, gc=False):
    """An event with the generation it was stored in and the versions it passed."""

    event: Event
    generation: Generation
    migrated_from: tuple[str, ...] = ()
    """Provenance: the versions the event was upcast from, oldest first, each
    the source of one registered step (`UpcasterRegistry.path`). A V0a failure
    gives ("V0a", "V0b") (V0a -> V0b -> V1); any other legacy event ("V0b",),
    since without a failure field V0a and V0b read the same; () when the data
    was already V1 (or is an UnknownEvent, which is kept, not upcast)."""


class _UnknownCommon(Struct):
    """The common fields of an event of unknown type, validated."""

    event_id: ev.U64
    source_event_id: ev.U64 | None = None
    instance_id: str = ""
    execution_id: ev.U64 = 0
    timestamp_ms: ev.U64 = 0
    duroxide_version: str = ""


# What the msgspec decoders may raise on hostile input: besides their own
# errors, invalid UTF-8 and nesting deeper than the interpreter's recursion
# limit. All of it becomes DecodeError.
_DECODE_ERRORS: Final = (
    msgspec.ValidationError,
    msgspec.DecodeError,
    RecursionError,
    UnicodeDecodeError,
)

_ENCODER: Final = msgspec.json.Encoder(enc_hook=_enc_hook)
_V1_DECODER: Final[msgspec.json.Decoder[KnownEvent]] = msgspec.json.Decoder(
    KnownEvent, dec_hook=_dec_hook
)
_ANY_DECODER: Final = msgspec.json.Decoder()


class _LegacyPlan(Struct, frozen=True, gc=False):
    """How to read one legacy type: its envelope decoder and upcast to V1."""

    type_name: str
    decoder: msgspec.json.Decoder[Any]
    upgrade: Upgrade
    versions: tuple[str, ...]
    is_failure: bool


def _envelope(type_name: str) -> msgspec.json.Decoder[Any]:
    # {"TypeName": {...}} decodes into a one-field Struct; forbidding unknown
    # fields makes a second variant key an error for free.
    envelope = msgspec.defstruct(
        f"V0{type_name}",
        [(type_name, _v0_snapshot_type(type_name))],
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.json.Decoder(envelope, dec_hook=_dec_hook)


_ENVELOPES: Final[dict[str, msgspec.json.Decoder[Any]]] = {
    name: _envelope(name) for name in _V0_TYPES
}
