"""Decode alone, per event: V1 against a bare msgspec typed decode, and V0 against V1.

The events are the fixtures' real ones that exist in both generations (duroxide's
V1 rows and their V0b rewrites), so both sides decode the same content.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from eventstore import decode
from eventstore.events import KnownEvent

from .common import FIXTURES, Result, interleaved, rows_of

REPEAT = 200


def _paired() -> tuple[list[tuple[bytes, str, int]], list[tuple[bytes, str, int]]]:
    v1 = {
        (r["instance_id"], r["execution_id"], r["event_id"]): r
        for r in rows_of(FIXTURES / "duroxide-0.1.32" / "history.jsonl")
    }
    v1_rows, v0_rows = [], []
    for row in rows_of(FIXTURES / "legacy" / "v0b-history.jsonl"):
        key = (row["instance_id"], row["execution_id"], row["event_id"])
        if key in v1 and row["event_type"] != "SystemCall":
            v1_rows.append(
                (v1[key]["event_data"].encode(), row["instance_id"], row["execution_id"])
            )
            v0_rows.append((row["event_data"].encode(), row["instance_id"], row["execution_id"]))
    return v1_rows, v0_rows


def run(directory: Path, sizes: list[int], rounds: int) -> list[Result]:
    v1_rows, v0_rows = _paired()
    count = len(v1_rows) * REPEAT
    typed = msgspec.json.Decoder(KnownEvent)

    def ours_v1() -> int:
        for _ in range(REPEAT):
            for data, instance_id, execution_id in v1_rows:
                decode(data, instance_id=instance_id, execution_id=execution_id)
        return count

    def ours_v0() -> int:
        for _ in range(REPEAT):
            for data, instance_id, execution_id in v0_rows:
                decode(data, instance_id=instance_id, execution_id=execution_id)
        return count

    def bare_v1() -> int:
        for _ in range(REPEAT):
            for data, _, _ in v1_rows:
                try:
                    typed.decode(data)
                except msgspec.ValidationError:  # failures need eventstore's ErrorDetails hook
                    json.loads(data)
        return count

    v1, bare = interleaved(ours_v1, bare_v1, rounds)
    v0, v1_again = interleaved(ours_v0, ours_v1, rounds)
    return [
        Result("decode V1 (per event)", count, v1, "bare msgspec typed decode", bare,
               rounds=rounds, note="informative: the sniff and size limit on top of msgspec"),
        Result("decode V0 vs V1 (inverse cost)", count, v0, "eventstore decode V1", v1_again,
               target=1 / 1.5, rounds=rounds,
               note="ratio = V1 cost / V0 cost; the target is V0 at most 1.5x V1"),
    ]  # fmt: skip
