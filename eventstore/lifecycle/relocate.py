"""Moving the archive directory: the shard manifest follows the files.

The manifest records each archive's location as written (an absolute path),
and reads open exactly that path, so an archive directory moved to another
disk or host path makes reads of archived executions fail with
ArchiveMissingError naming the old place. `relocate_archives(store, old,
new)` (`eventstore shards relocate-archive TARGET OLD NEW`) points every
recorded archive under `old` at the same relative path under `new`.

Nothing is rewritten unless every file checks at its new place (its sha256
against the recorded one and its row count, as `verify --include-archived`
checks), and then all locations change in one manifest transaction: a
relocation is all or nothing, and running it again after a kill or a failed
check is safe. It runs under the run lock, so no retention run records an
archive meanwhile.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ArchiveError, StoreError, ValidationError
from ..store import HistoryStore
from ..store.archive_file import verify_archive
from ..store.lifecycle_protocol import ShardArchiveRow

__all__ = ["Relocation", "relocate_archives"]


@dataclass(frozen=True, slots=True)
class Relocation:
    archive_id: str
    shard: str
    old: str
    new: str


def _moved(location: str, old_root: Path, new_root: Path) -> Path | None:
    """`location` under `new_root` when it lies under `old_root`, else None."""
    try:
        relative = Path(location).relative_to(old_root)
    except ValueError:
        return None
    return new_root / relative


def relocate_archives(
    store: HistoryStore,
    old_dir: Path,
    new_dir: Path,
    *,
    dry_run: bool = False,
    progress: Callable[[int], object] | None = None,
) -> list[Relocation]:
    """Point the manifest's archives under `old_dir` at `new_dir`; the moves.

    Raises ValidationError when no recorded archive lies under `old_dir`
    (naming the directories that do hold them), and ArchiveError naming
    every file that is missing or fails its check at the new place (a
    StoreError); in both cases nothing is changed.
    """
    # The old place usually exists no more: make it absolute without
    # resolving it. Recorded locations were resolved when written.
    old_root = Path(os.path.abspath(old_dir))
    new_root = new_dir.resolve()
    lifecycle = store.lifecycle
    with store.evolution.run_lock("shards relocate-archive"):
        archives = [a for a in lifecycle.archives() if a.state in ("verified", "purged")]
        moves = []
        for archive in archives:
            new = _moved(archive.location, old_root, new_root)
            if new is not None and str(new) != archive.location:
                moves.append((archive, new))
        if not moves:
            where = sorted({str(Path(a.location).parent.parent) for a in archives})
            raise ValidationError(
                f"no archive the shard manifest records is under {old_root}"
                + (f"; they are under {', '.join(where)}" if where else "")
            )
        problems = []
        for archive, new in moves:
            try:
                verify_archive(new, archive.shard, archive.checksum, archive.rows)
            except ArchiveError as exc:
                problems.append(str(exc))
            if progress is not None:
                progress(1)
        if problems:
            raise StoreError(
                f"nothing relocated: {len(problems)} of {len(moves)} archives do not check"
                f" under {new_root}: " + "; ".join(problems)
            )
        relocated = [Relocation(a.archive_id, a.shard, a.location, str(n)) for a, n in moves]
        if not dry_run:
            _record(store, moves, old_root, new_root)
    return relocated


def _record(
    store: HistoryStore, moves: list[tuple[ShardArchiveRow, Path]], old: Path, new: Path
) -> None:
    lifecycle = store.lifecycle
    shards = lifecycle.shards()
    with lifecycle.writing() as w:
        for archive, path in moves:
            w.save_archive(archive._replace(location=str(path)))
        for shard in shards:
            moved = shard.archive_location and _moved(shard.archive_location, old, new)
            if moved:
                w.save_shard(shard._replace(archive_location=str(moved)))
