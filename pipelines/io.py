"""Atomic file writes: a reader never sees a partial file, and temporaries never stay behind as data."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from mmfeat.extractors.errors import Rejected
from mmfeat.pipelines.config import OutputConfig
from mmfeat.pipelines.storage import ObjectPath, StorePath, is_url
from mmfeat.schemas.manifest import FileDigest, file_digest
from mmfeat.schemas.tensors import is_byte_tensor_type, is_clip_type, is_matrix_type, is_tensor_type, pack_byte_tensors


class WritesClosed(RuntimeError):
    """The process is stopping (an interrupt): no file may be written any more."""


_GATE = threading.Condition()
_WRITING: dict[int, int] = {}  # thread id -> writes under way in it
_CLOSED = False


@contextlib.contextmanager
def _gated() -> Iterator[None]:
    """One output write, counted so that :func:`close_writes` can wait for it; refused once writes are closed."""
    global _CLOSED
    me = threading.get_ident()
    with _GATE:
        if _CLOSED:
            raise WritesClosed("the run is being stopped: nothing more is written")
        _WRITING[me] = _WRITING.get(me, 0) + 1
    try:
        yield
    finally:
        with _GATE:
            _WRITING[me] -= 1
            if not _WRITING[me]:
                del _WRITING[me]
            _GATE.notify_all()


def close_writes(timeout_s: float = 30.0) -> bool:
    """Refuse every later write and wait for those under way in other threads (the calling thread's, interrupted
    by a signal handler, never resume); True when none is left. Before an interrupted run's output is put in
    order, so that no writer thread puts a file into it afterwards."""
    global _CLOSED
    me = threading.get_ident()
    with _GATE:
        _CLOSED = True
        return _GATE.wait_for(lambda: not any(thread != me for thread in _WRITING), timeout=timeout_s)


def _temporary_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def _local_temporary() -> Path:
    handle, name = tempfile.mkstemp(prefix="mmfeat-shard-", suffix=".tmp")
    os.close(handle)
    return Path(name)


def write_text_atomically(path: StorePath, text: str) -> None:
    write_bytes_atomically(path, text.encode("utf-8"))


def write_bytes_atomically(path: StorePath, data: bytes) -> None:
    with _gated():
        if isinstance(path, ObjectPath):  # an object is visible only once its upload completes
            path.write_bytes(data)
            return
        tmp = _temporary_beside(path)
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """String columns (and lists of strings): where dictionary encoding pays.

    pyarrow tries it on every column by default; on float matrices it only costs time and bytes
    (measured on MFCC shards: 2.4 -> 2.0 ms per row written, 9.8 -> 9.2 MB).
    """

    def is_text(data_type: pa.DataType) -> bool:  # strings, lists of strings, lists of lists of strings…
        return pa.types.is_string(data_type) or (pa.types.is_list(data_type) and is_text(data_type.value_type))

    return [path for f in schema if is_text(f.type) for path in leaf_paths(f)]


def byte_stream_split_columns(schema: pa.Schema) -> list[str]:
    """8-bit tensors (images, clips of frames) in the ``output.byte_tensors=tensor`` layout: written with
    BYTE_STREAM_SPLIT (the default layout stores their bytes instead: ``schemas.tensors.pack_byte_tensors``).

    Parquet has no 8-bit type, so a uint8 is stored as an INT32. BYTE_STREAM_SPLIT puts each of
    its 4 bytes in a stream of its own, and zstd reduces the three zero streams to almost nothing.
    Measured against a dictionary, this writer's choice before (128 rows, zstd level 1):
    224x224x3 photos were written in 2.0 instead of 4.1 ms per image, at 128 instead of 129 KiB,
    and read faster; 8x112x112x3 clips in 3.5 instead of 6.0 ms per clip, at the same size.
    pyarrow, DuckDB 2.0 and Polars 2.1 read it (tested).
    """
    return [path for f in schema if is_byte_tensor_type(f.type) for path in leaf_paths(f)]


def statistics_columns(schema: pa.Schema) -> list[str]:
    """Columns worth min/max statistics: not matrices, tensors or bytes (statistics there cost write and read time)."""
    arrays = (is_matrix_type, is_tensor_type, is_clip_type, _is_bytes)
    return [path for f in schema if not any(is_array(f.type) for is_array in arrays) for path in leaf_paths(f)]


def _is_bytes(data_type: pa.DataType) -> bool:  # encoded images, packed tensors and lists of them
    if pa.types.is_list(data_type):
        return _is_bytes(data_type.value_type)
    return pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type) or pa.types.is_fixed_size_binary(data_type)


def leaf_paths(field: pa.Field) -> list[str]:
    """Parquet column paths of a field's leaves (``tokens.list.element``), as pyarrow's per-column options want them."""
    data_type = field.type.storage_type if isinstance(field.type, pa.BaseExtensionType) else field.type
    if pa.types.is_list(data_type) or pa.types.is_fixed_size_list(data_type) or pa.types.is_large_list(data_type):
        return [f"{field.name}.list.{p}" for p in leaf_paths(pa.field("element", data_type.value_type))]
    if pa.types.is_struct(data_type):
        return [f"{field.name}.{p}" for child in data_type for p in leaf_paths(child)]
    return [field.name]


def write_parquet_atomically(table: pa.Table, path: StorePath, config: OutputConfig) -> FileDigest:
    """Write a Parquet file (compression and row groups from ``config``) under a hidden temporary name, then rename it;
    its size and sha256."""
    with _gated():
        return _write_parquet(table, path, config)


def row_group_size(table: pa.Table, config: OutputConfig) -> int:
    """Rows per row group: ``row_group_rows``, fewer when rows are large enough for ``row_group_bytes`` to bind
    (the table's own uncompressed size per row: deterministic for the same rows)."""
    if table.num_rows == 0 or table.nbytes <= config.row_group_bytes:
        return config.row_group_rows
    return max(1, min(config.row_group_rows, config.row_group_bytes * table.num_rows // table.nbytes))


def _write_parquet(table: pa.Table, path: StorePath, config: OutputConfig) -> FileDigest:
    """Into a hidden temporary file beside ``path``, renamed into place; for an object, a local temporary file,
    uploaded to ``path``."""
    tmp = _temporary_beside(path) if isinstance(path, Path) else _local_temporary()
    compression = config.compression
    if config.byte_tensors == "bytes":
        table = pack_byte_tensors(table)
    try:
        pq.write_table(
            table,
            tmp,
            compression=None if compression == "none" else compression,
            compression_level=config.compression_level if compression in ("zstd", "gzip") else None,
            row_group_size=row_group_size(table, config),
            use_dictionary=dictionary_columns(table.schema),
            use_byte_stream_split=byte_stream_split_columns(table.schema) or False,
            write_statistics=statistics_columns(table.schema),
        )
        digest = file_digest(tmp)
        if isinstance(path, ObjectPath):
            path.upload(tmp)
        else:
            os.replace(tmp, path)
        return digest
    finally:
        tmp.unlink(missing_ok=True)


SizeLimit = Callable[[str | BinaryIO, int], "int | None"]


def read_source_bytes(path: str, *, max_bytes: int | SizeLimit | None = None) -> bytes:
    """Read a whole media file once, from a local path or an object store (``s3://``, ``gs://``).

    An unreadable or missing file is a reject (``file_unreadable``), not a crash, and a file over ``max_bytes`` (a
    huge or sparse file) is rejected (``file_too_large``) without being read. ``max_bytes`` may be a function of the
    file (its path, or for an object its open stream) and its size, that reads only a header to decide. A store
    that cannot be reached at all (a dropped connection) is no reject: it fails the run, which ``--resume`` finishes.
    """
    if is_url(path):
        return _read_object(ObjectPath(path), max_bytes)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            limit = max_bytes(path, size) if callable(max_bytes) else max_bytes
            _check_size(size, limit)
            return handle.read()
    except OSError as err:
        raise Rejected("file_unreadable", f"{type(err).__name__}: {err.strerror or err}") from err


def _read_object(path: ObjectPath, max_bytes: int | SizeLimit | None) -> bytes:
    try:
        size = path.size()
        with path.open_read() as handle:
            limit = max_bytes(handle, size) if callable(max_bytes) else max_bytes
            _check_size(size, limit)
            handle.seek(0)
            return handle.read()
    except (FileNotFoundError, PermissionError) as err:
        raise Rejected("file_unreadable", f"{type(err).__name__}: {err.strerror or err}") from err


def _check_size(size: int, limit: int | None) -> None:
    if limit is not None and size > limit:
        raise Rejected("file_too_large", f"{size} bytes, over the {limit} this file's kind can need")


class LocalCopies:
    """Local files for decoders that need a path (PyAV and libsndfile seek in a dialog's video and wav).

    A local path is given back as it is. An object in a bucket is copied to a temporary file first, in chunks, and
    refused over ``max_bytes`` (``file_too_large``, before anything is fetched); the ``keep`` most recent copies stay
    (a dialog's utterances, read one after the other, reuse its video and wav) and the others are deleted, as all
    are at :meth:`close`. A missing object is ``file_unreadable``.
    """

    def __init__(self, *, keep: int = 2, max_bytes: int = 16 << 30) -> None:
        self.keep = keep
        self.max_bytes = max_bytes
        self._copies: dict[str, Path] = {}  # source URL -> local copy, oldest first
        self._lock = threading.Lock()

    def path(self, source: str) -> str:
        if not is_url(source):
            return source
        with self._lock:
            if source in self._copies:
                self._copies[source] = self._copies.pop(source)  # the most recent now
                return str(self._copies[source])
            copy = self._fetch(ObjectPath(source))
            self._copies[source] = copy
            while len(self._copies) > self.keep:
                _remove_copy(self._copies.pop(next(iter(self._copies))))
            return str(copy)

    def _fetch(self, source: ObjectPath) -> Path:
        """A copy under the object's own name (decoders' messages name the file), in a folder of its own."""
        try:
            _check_size(source.size(), self.max_bytes)
            copy = Path(tempfile.mkdtemp(prefix="mmfeat-copy-")) / source.name
            try:
                with open(copy, "wb") as out, source.open_read() as stream:
                    while chunk := stream.read(16 << 20):
                        out.write(chunk)
            except BaseException:
                _remove_copy(copy)  # no partial copy stays behind
                raise
            return copy
        except (FileNotFoundError, PermissionError) as err:
            raise Rejected("file_unreadable", f"{type(err).__name__}: {err.strerror or err}") from err

    def close(self) -> None:
        with self._lock:
            for copy in self._copies.values():
                _remove_copy(copy)
            self._copies.clear()


def _remove_copy(copy: Path) -> None:
    copy.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        copy.parent.rmdir()
