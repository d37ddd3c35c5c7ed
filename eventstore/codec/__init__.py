"""One decode path for every generation, and the duroxide-exact V1 encoder.

Generations (see proposals/event-schema-evolution.md):

* V1: a flat object with a `type` tag. Decoded by one typed msgspec decode
  straight from the bytes: no intermediate dicts, no per-event Python walk.
* V0 (V0a / V0b): `{"TypeName": {...fields}}`, one variant key. Recognised by
  the first key starting with an upper-case letter (V1 keys are snake_case),
  decoded typed into the legacy snapshot, then upcast to V1 through the
  registered chain V0a -> V0b -> V1 (`eventstore.codec.upcasting`).
* Anything else goes through a slow path that explains what is wrong, or
  yields an UnknownEvent for a well-formed event of a type we do not know.
"""

from ..errors import RowDecodeError
from .core import DEFAULT_CODEC, DEFAULT_MAX_EVENT_BYTES, Codec, decode, detect_version, encode
from .decoders import Decoded
from .generation import Generation
from .legacy import LegacyFailure, builtin_registry
from .rows import UNRECORDED_TYPE, check_row, column_problem, reconcile_row
from .wire import error_details_from_wire, error_details_to_wire

__all__ = [
    "DEFAULT_CODEC",
    "DEFAULT_MAX_EVENT_BYTES",
    "Codec",
    "Decoded",
    "Generation",
    "LegacyFailure",
    "RowDecodeError",
    "UNRECORDED_TYPE",
    "reconcile_row",
    "decode",
    "detect_version",
    "encode",
    "error_details_from_wire",
    "builtin_registry",
    "check_row",
    "column_problem",
    "error_details_to_wire",
]
