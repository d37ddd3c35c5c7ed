"""Retention archives: gzip-compressed JSON lines, rows verbatim, with a sha256.

The format, chosen so that standard tools read it without eventstore:

* One JSON object per line, exactly the line `eventstore export` writes
  (`transfer_rows.exported_row`): instance_id, execution_id, event_id,
  event_type, event_data (the stored text, byte for byte; bytes that are
  not UTF-8 as `{"base64": ...}`) and created_at. `zcat f | jq`,
  DuckDB's `read_json('f.jsonl.gz')` and `eventstore import` all read it.
* gzip (the standard library: no dependency), written as a series of gzip
  members of a few executions each. Concatenated members are one valid gzip
  file (RFC 1952 section 2.2; zcat and every gzip reader read through), and
  each member starts at a byte offset the manifest records per execution, so
  `store.read()` of one archived execution decompresses one member, not the
  file. Each member carries its own CRC-32, checked on every such read.
* `<file>.sha256` beside it, in `sha256sum -c` format, and the same digest
  of the whole file in the manifest: retention verifies the file against it
  before any row is deleted, `verify --include-archived` again later.

The file is written as `<name>.partial`, flushed and fsynced, then renamed
and the directory fsynced: a final name only ever names a complete file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from ..errors import ArchiveError, ArchiveMissingError
from .protocol import RawRow
from .transfer_rows import exported_row

__all__ = [
    "ARCHIVE_SUFFIX",
    "ArchiveWriter",
    "file_checksum",
    "read_archive",
    "read_member",
    "verify_archive",
]

ARCHIVE_SUFFIX: Final = ".jsonl.gz"
_LEVEL: Final = 6
_CHUNK: Final = 1 << 16
_OUT: Final = 1 << 18
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def _member(payload: bytes) -> bytes:
    """One gzip member (mtime 0, no name: the same rows give the same bytes)."""
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, 31)
    return compressor.compress(payload) + compressor.flush()


class ArchiveWriter:
    """Writes one archive: `add(rows)` per member, `close()` -> (rows, sha256)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = open(self.partial, "wb")  # noqa: SIM115 (closed in close)
        self._digest = hashlib.sha256()
        self.offset = 0
        """Byte offset where the next member starts."""
        self.rows = 0

    def add(self, rows: Iterable[RawRow]) -> int:
        """Write rows as one member; return the member's byte offset."""
        lines = [_encode(exported_row(*row[1:])) for row in rows]  # every column but the position
        start = self.offset
        if not lines:
            return start
        data = _member(b"\n".join(lines) + b"\n")
        self._file.write(data)
        self._digest.update(data)
        self.offset += len(data)
        self.rows += len(lines)
        return start

    def close(self) -> tuple[int, str]:
        """Flush, fsync, rename into place, fsync the directory; (rows, sha256)."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.partial, self.path)
        checksum = self._digest.hexdigest()
        sidecar = self.path.with_name(self.path.name + ".sha256")
        sidecar.write_text(f"{checksum}  {self.path.name}\n")
        _fsync_dir(self.path.parent)
        return self.rows, checksum

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self.partial.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open(path: Path, shard: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ArchiveMissingError(
            f"the archive of shard {shard} is gone: {path} (if the archive directory moved:"
            " eventstore shards relocate-archive TARGET OLD_DIR NEW_DIR)",
            shard=shard,
            location=str(path),
        ) from None
    except OSError as exc:
        raise ArchiveError(
            f"cannot read the archive of shard {shard} at {path}: {exc.strerror or exc}",
            shard=shard,
            location=str(path),
        ) from None


def file_checksum(path: Path, shard: str) -> str:
    """sha256 of the file's bytes (hex)."""
    digest = hashlib.sha256()
    with _open(path, shard) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The lines of every member from the stream's position to its end.

    Input is read and output produced in bounded pieces (`_CHUNK`, `_OUT`):
    a member of highly compressible JSON must not inflate in one go, so the
    memory this takes is the same for a file of 1 MB and of 1 GB.
    """
    decompressor = zlib.decompressobj(31)
    inside = False  # within a member (its end not seen yet)
    pending = b""
    while chunk := stream.read(_CHUNK):
        data = chunk
        while data:
            inside = True
            out = decompressor.decompress(data, _OUT)
            data = decompressor.unconsumed_tail
            if decompressor.eof:  # a member ended; the next may start in this chunk
                data = decompressor.unused_data
                decompressor = zlib.decompressobj(31)
                inside = False
            *complete, pending = (pending + out).split(b"\n")
            yield from complete
    if inside or pending:
        raise zlib.error("the file ends inside a gzip member")


def read_archive(path: Path, shard: str) -> Iterator[dict[str, Any]]:
    """Every row of an archive, as export writes rows, in file order (streaming)."""
    with _open(path, shard) as f:
        try:
            for line in _lines(f):
                yield _decode(line)
        except (zlib.error, msgspec.DecodeError) as exc:
            raise ArchiveError(
                f"the archive of shard {shard} at {path} is damaged: {exc}",
                shard=shard,
                location=str(path),
            ) from None


def read_member(path: Path, shard: str, offset: int) -> list[dict[str, Any]]:
    """The rows of the one gzip member starting at `offset` (its CRC checked)."""
    with _open(path, shard) as f:
        try:
            f.seek(offset)
            decompressor = zlib.decompressobj(31)
            payload = b""
            while not decompressor.eof:
                chunk = f.read(_CHUNK)
                if not chunk:
                    raise zlib.error("the file ends inside a gzip member")
                payload += decompressor.decompress(chunk)
            return [_decode(line) for line in payload.split(b"\n") if line]
        except (zlib.error, msgspec.DecodeError) as exc:
            raise ArchiveError(
                f"the archive of shard {shard} at {path} is damaged at byte {offset}: {exc}",
                shard=shard,
                location=str(path),
            ) from None


def verify_archive(path: Path, shard: str, checksum: str, rows: int) -> None:
    """The file's sha256 is `checksum` and it decompresses to `rows` rows, else ArchiveError."""
    found = file_checksum(path, shard)
    if found != checksum:
        raise ArchiveError(
            f"the archive of shard {shard} at {path} fails its checksum"
            f" (sha256 {found}, recorded {checksum})",
            shard=shard,
            location=str(path),
        )
    counted = sum(1 for _ in read_archive(path, shard))
    if counted != rows:
        raise ArchiveError(
            f"the archive of shard {shard} at {path} holds {counted} rows, recorded {rows}",
            shard=shard,
            location=str(path),
        )
