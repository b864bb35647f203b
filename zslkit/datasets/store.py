"""The feature store: region feature maps on disk, read a batch at a time.

A store is a directory::

    STORE/
      store.json       shape, dtype, array format, zslkit version and the caller's
                       metadata (backbone, image size, image file list, checksums of the
                       split files, ...); written when the store is created
      features.npy     (N, C, H, W) array, float16 by default -- or features.safetensors
      prefix.npy       (N, P, C) prefix tokens (CLS, distillation, registers) of a ViT's images,
                       beside its patch map -- or prefix.safetensors; only in stores created with
                       ``prefix_tokens`` (store.json's ``prefix_shape``), see below
      progress.json    {"done": n}: rows 0..n-1 are written and flushed to disk
      progress-A-B.json  {"start": A, "stop": B, "done": n}: rows A..n-1 of the slice
                       A..B-1 are on disk (one file per process of a parallel extraction)
      COMPLETE         written last, after every row is on disk

Both array formats are a small header followed by the raw C-order array, so
``np.load("features.npy", mmap_mode="r")`` and ``safetensors.safe_open`` read a
finished store too. zslkit itself reads rows with positioned reads (``os.preadv``) into
fresh buffers rather than a memory map: pages of a memory-mapped file count towards
the resident memory of the process while they stay cached, positioned reads do not.

Writing is resumable: rows are written in order, flushed with ``fsync``, and only then
is ``progress.json`` atomically replaced. An interrupted extraction therefore resumes
at the first row not known to be on disk, and a store without ``COMPLETE`` refuses to
open (:class:`IncompleteStoreError`) unless asked for explicitly.

Parallel extraction (``torchrun ... zslkit extract``) gives each process a slice of
rows, written by a :class:`StoreWriter` for that slice with its own progress file.
The rows on disk are the union of what all progress files record; only a writer
of the whole store can :meth:`~StoreWriter.finish` it, and only when that union
covers every row, so ``COMPLETE`` certifies all slices. A resumed extraction, with
any number of processes, continues each slice after the rows already on disk.

Prefix tokens: ``zslkit extract`` over a ViT-family backbone stores, beside the patch tokens as a
map, the prefix tokens of every image after the model's final norm (``prefix.npy``; ``store.json``
records ``prefix_shape`` ``[N, P, C]``). Both arrays are written, flushed and only then counted in the
progress record, so a row on disk has both. :attr:`FeatureStore.prefix` reads them row by row; stores
without them (CNN maps, or ViT stores extracted before zslkit kept the prefix tokens) have
``prefix is None``, and :meth:`FeatureStore.require_prefix` says why in one line.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np

from zslkit.atomic import remove_stale_temporaries, write_json_atomic
from zslkit.datasets.checks import file_error, npy_layout, reading
from zslkit.datasets.container import DatasetError
from zslkit.datasets.lazy_rows import LazyRows

__all__ = [
    "COMPLETE_FILE",
    "METADATA_FILE",
    "PREFIX_FILES",
    "PROGRESS_FILE",
    "SLICE_PROGRESS_GLOB",
    "STORE_FORMATS",
    "FeatureStore",
    "IncompleteStoreError",
    "PrefixTokens",
    "StoreWriter",
    "create_store",
    "is_store",
    "open_store",
    "store_status",
]

METADATA_FILE = "store.json"
PROGRESS_FILE = "progress.json"
COMPLETE_FILE = "COMPLETE"
SLICE_PROGRESS_GLOB = "progress-*-*.json"
STORE_FORMATS: dict[str, str] = {"npy": "features.npy", "safetensors": "features.safetensors"}
PREFIX_FILES: dict[str, str] = {"npy": "prefix.npy", "safetensors": "prefix.safetensors"}
_SAFETENSORS_DTYPES = {"float16": "F16", "float32": "F32"}
_DTYPES = ("float16", "float32")
_STORE_VERSION = 1


class IncompleteStoreError(DatasetError):
    """The store exists but its extraction did not finish (no ``COMPLETE`` marker)."""


# ---------------------------------------------------------------------------- headers
def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    import io

    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    np.lib.format.write_array_header_2_0(buffer, header)
    return buffer.getvalue()


def _safetensors_header(shape: tuple[int, ...], dtype: np.dtype, metadata: dict[str, str], key: str = "features") -> bytes:
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    header = {
        "__metadata__": metadata,
        key: {"dtype": _SAFETENSORS_DTYPES[dtype.name], "shape": list(shape), "data_offsets": [0, nbytes]},
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep the array 8-byte aligned
    return struct.pack("<Q", len(text)) + text


def _read_layout(path: Path, fmt: str, key: str = "features") -> tuple[int, tuple[int, ...], np.dtype]:
    """``(data offset, shape, dtype)`` of the array file (safetensors: of its tensor ``key``), from its own header."""
    with reading(path, "the feature array header"):
        if fmt == "npy":
            offset, shape, dtype, fortran = npy_layout(path)
            if fortran:
                raise file_error(path, "array is in Fortran order; the store needs C order")
            return offset, shape, dtype
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(min(length, 1 << 24)))
        if key not in header:
            raise file_error(path, f"holds no tensor {key!r}")
        entry = header[key]
        names = {v: k for k, v in _SAFETENSORS_DTYPES.items()}
        return 8 + length + int(entry["data_offsets"][0]), tuple(int(s) for s in entry["shape"]), np.dtype(names[entry["dtype"]])


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while len(data):
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written


def _pread_into(fd: int, buffer: memoryview, offset: int, path: Path) -> None:
    while len(buffer):
        got = os.preadv(fd, [buffer], offset) if hasattr(os, "preadv") else _pread_copy(fd, buffer, offset)
        if got == 0:
            raise file_error(path, f"file ends at byte {offset}: truncated feature array")
        buffer, offset = buffer[got:], offset + got


def _pread_copy(fd: int, buffer: memoryview, offset: int) -> int:
    data = os.pread(fd, len(buffer), offset)
    buffer[: len(data)] = data
    return len(data)


def _write_json_atomic(path: Path, content: dict[str, Any]) -> None:
    """The store's records (metadata, progress, completeness marker): atomic and flushed to disk."""
    write_json_atomic(path, content, fsync=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path) as f:
            content = json.load(f)
    except FileNotFoundError:
        raise file_error(path, "missing") from None
    except (OSError, ValueError) as exc:
        raise file_error(path, f"not valid JSON ({exc})") from None
    if not isinstance(content, dict):
        raise file_error(path, f"expected a JSON object, found {type(content).__name__}")
    return content


# ---------------------------------------------------------------------------- reading
class _PositionedReads:
    """Rows of one array file (``array_path``, data at ``_offset``) read with positioned reads; reopened in forked workers."""

    array_path: Path
    _offset: int
    _fd: int | None = None
    _pid: int | None = None

    @property
    def row_bytes(self) -> int:
        return self.nbytes // max(len(self), 1)  # type: ignore[attr-defined]

    def _check_size(self) -> None:
        expected = self._offset + self.nbytes  # type: ignore[attr-defined]
        size = self.array_path.stat().st_size
        if size < expected:
            raise file_error(self.array_path, f"truncated: {size} bytes, expected {expected} for shape {self.shape} {self.dtype.name}")  # type: ignore[attr-defined]

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # reopen in forked workers
            self._fd, self._pid = os.open(self.array_path, os.O_RDONLY), os.getpid()
        return self._fd

    def _pread_rows(self, start: int, out: np.ndarray) -> None:
        _pread_into(self._file(), memoryview(out).cast("B"), self._offset + start * self.row_bytes, self.array_path)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __getstate__(self) -> dict[str, Any]:  # picklable for DataLoader workers
        return {**self.__dict__, "_fd": None, "_pid": None}

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


class PrefixTokens(_PositionedReads, LazyRows):
    """The ``(N, P, C)`` prefix tokens of a store (``store.prefix``), read like its features: ``prefix[indices]``."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self.array_path = store.path / PREFIX_FILES[store.format]
        self._offset, self.shape, self.dtype = _read_layout(self.array_path, store.format, "prefix")
        recorded = store.info.get("prefix_shape")
        if list(self.shape) != recorded or self.dtype != store.dtype:
            raise file_error(self.array_path, f"array header says {self.shape} {self.dtype.name}, store.json says "
                                              f"{recorded} {store.dtype.name}")
        self._check_size()

    def _read_run(self, start: int, stop: int, out: np.ndarray) -> None:
        self.store._check_written(start, stop)
        self._pread_rows(start, out)


class FeatureStore(_PositionedReads, LazyRows):
    """A finished (or, with ``allow_incomplete``, partial) store opened for reading.

    Indexing returns numpy arrays in the stored dtype: ``store[indices]`` ->
    ``(len(indices), C, H, W)``. ``metadata`` is the caller's metadata of
    ``store.json``; ``info`` the whole file. ``prefix`` is the :class:`PrefixTokens`
    ``(N, P, C)`` of a ViT store that holds them, else ``None``.
    """

    def __init__(self, path: str | Path, *, allow_incomplete: bool = False) -> None:
        self.path = Path(path)
        self.info = _read_json(self.path / METADATA_FILE)
        self.format = self.info.get("format")
        if self.format not in STORE_FORMATS:
            raise file_error(self.path / METADATA_FILE, f"unknown array format {self.format!r}; expected one of {list(STORE_FORMATS)}")
        self.array_path = self.path / STORE_FORMATS[self.format]
        self._offset, self.shape, self.dtype = _read_layout(self.array_path, self.format)
        recorded = (self.info.get("shape"), self.info.get("dtype"))
        if not isinstance(recorded[0], list) or recorded != (list(self.shape), self.dtype.name):
            raise file_error(self.array_path, f"array header says {self.shape} {self.dtype.name}, store.json says {recorded[0]} {recorded[1]}")
        if not isinstance(self.info.get("metadata", {}), dict):
            raise file_error(self.path / METADATA_FILE, f"metadata must be a JSON object, found {self.info['metadata']!r}")
        self._check_size()
        self.complete = (self.path / COMPLETE_FILE).is_file()
        self._written = [(0, len(self))] if self.complete else _written_rows(self.path)
        #: rows 0..done-1 are on disk (an unbroken run from the first row).
        self.done = _written_until(self._written, 0)
        #: rows on disk in all (with slices: possibly beyond the first gap too).
        self.written = sum(stop - start for start, stop in self._written)
        if not self.complete and not allow_incomplete:
            raise IncompleteStoreError(
                f"{self.path}: incomplete feature store ({self.written} of {len(self)} images extracted, no {COMPLETE_FILE} marker); "
                "rerun the same `zslkit extract` command to resume it"
            )
        self.prefix = PrefixTokens(self) if self.info.get("prefix_shape") is not None else None

    @property
    def metadata(self) -> dict[str, Any]:
        return self.info.get("metadata", {})

    def require_prefix(self, purpose: str) -> PrefixTokens:
        """:attr:`prefix`, or a one-line :class:`DatasetError` saying why this store has none and what to do."""
        if self.prefix is not None:
            return self.prefix
        from zslkit.backbones.timm_backbone import prefix_tokens_note

        backbone = self.metadata.get("backbone")
        why = prefix_tokens_note(backbone if isinstance(backbone, dict) else {})
        raise DatasetError(f"{self.path}: {purpose} needs the images' prefix (CLS) tokens, and this store holds none ({why})")

    @property
    def recipe_note(self) -> str | None:
        """What is known to be wrong with how these features were made (old-style ViT features), or ``None``."""
        from zslkit.backbones.timm_backbone import feature_recipe_note

        backbone = self.metadata.get("backbone")
        return feature_recipe_note(backbone) if isinstance(backbone, dict) else None

    def _check_written(self, start: int, stop: int) -> None:
        if _written_until(self._written, start) < stop:
            missing = max(start, _written_until(self._written, start))
            raise IncompleteStoreError(f"{self.path}: row {missing} is not extracted yet ({self.written} of {len(self)} are)")

    def _read_run(self, start: int, stop: int, out: np.ndarray) -> None:
        self._check_written(start, stop)
        self._pread_rows(start, out)

    def close(self) -> None:
        super().close()
        if getattr(self, "prefix", None) is not None:
            self.prefix.close()

    def memmap(self) -> np.memmap:
        """A read-only numpy memory map of the whole array (its pages count as resident memory)."""
        return np.memmap(self.array_path, dtype=self.dtype, mode="r", offset=self._offset, shape=self.shape)


def _slice_progress_file(path: Path, start: int, stop: int) -> Path:
    return path / f"progress-{start}-{stop}.json"


def _written_rows(path: Path) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` on disk according to all progress files, merged and sorted."""
    ranges = []
    if (path / PROGRESS_FILE).is_file():
        done = _read_json(path / PROGRESS_FILE).get("done", 0)
        if not isinstance(done, int) or done < 0:
            raise file_error(path / PROGRESS_FILE, f"\"done\" must be a row count, found {done!r}")
        ranges.append((0, done))
    for progress in path.glob(SLICE_PROGRESS_GLOB):
        record = _read_json(progress)
        try:
            ranges.append((int(record["start"]), int(record["done"])))
        except (KeyError, TypeError, ValueError):
            raise file_error(progress, "not a slice progress record (start, stop, done)") from None
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(r for r in ranges if r[1] > r[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def _written_until(written: list[tuple[int, int]], row: int) -> int:
    """The end of the run of rows on disk that starts at ``row`` (``row`` itself if it is not on disk)."""
    return next((stop for start, stop in written if start <= row < stop), row)


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is a store directory (complete or not)."""
    return (Path(path) / METADATA_FILE).is_file()


def open_store(path: str | Path, *, allow_incomplete: bool = False) -> FeatureStore:
    """Open a store for reading; an unfinished one raises :class:`IncompleteStoreError`."""
    path = Path(path).expanduser()
    if not is_store(path):
        what = "does not exist" if not path.exists() else f"is not a zslkit feature store (no {METADATA_FILE})"
        raise DatasetError(f"{path}: {what}")
    store = FeatureStore(path, allow_incomplete=allow_incomplete)
    note = store.recipe_note
    if note is not None:
        logging.getLogger(__name__).warning("%s: %s", path, note)
    return store


def store_status(path: str | Path) -> dict[str, Any]:
    """``{"complete", "done", "total", "shape", "dtype", "format", "bytes"}`` of a store, without reading rows."""
    store = open_store(path, allow_incomplete=True)
    return {
        "complete": store.complete,
        "done": store.written,
        "total": len(store),
        "shape": store.shape,
        "dtype": store.dtype.name,
        "format": store.format,
        "bytes": store.nbytes,
    }


# ---------------------------------------------------------------------------- writing
class StoreWriter:
    """Appends rows, in order, to a store created or resumed by :func:`create_store`.

    The writer covers rows ``start..stop-1``: the whole store, or one slice of it (one
    process of a parallel extraction; see the module docstring). ``done`` is the next
    row to write: rows ``start..done-1`` are already on disk, continue from there.
    """

    def __init__(self, path: Path, rows: tuple[int, int] | None = None) -> None:
        self._store = FeatureStore(path, allow_incomplete=True)
        self.path = path
        self.shape = self._store.shape
        self.dtype = self._store.dtype
        self.start, self.stop = (0, self.total) if rows is None else (int(rows[0]), int(rows[1]))
        if not 0 <= self.start <= self.stop <= self.total:
            raise ValueError(f"{path}: rows ({self.start}, {self.stop}) are not a slice of the store's {self.total} rows")
        self.whole = (self.start, self.stop) == (0, self.total)
        written = [(0, self.total)] if self._store.complete else _written_rows(path)
        self.done = min(_written_until(written, self.start), self.stop)
        self._progress = path / PROGRESS_FILE if self.whole else _slice_progress_file(path, self.start, self.stop)

    @property
    def total(self) -> int:
        return int(self.shape[0])

    def write(self, start: int, rows: np.ndarray, prefix: np.ndarray | None = None) -> None:
        """Write ``rows`` (and, in a store with prefix tokens, their ``prefix`` ``(n, P, C)``) at ``start``
        (must equal ``done``), flush them, then record progress."""
        if start != self.done:
            raise DatasetError(f"{self.path}: rows must be written in order: next row is {self.done}, got {start}")
        arrays = [(self._store, self._checked(start, rows, self._store, "feature", "a store"))]
        if (prefix is None) != (self._store.prefix is None):
            made = "with" if self._store.prefix is not None else "without"
            raise DatasetError(f"{self.path}: the store was created {made} prefix_tokens: give prefix= "
                               f"{'with every write' if made == 'with' else 'to none of its writes'}")
        if prefix is not None:
            arrays.append((self._store.prefix, self._checked(start, prefix, self._store.prefix, "prefix token", "prefix tokens")))
        if len({len(a) for _, a in arrays}) != 1:
            raise DatasetError(f"{self.path}: {len(rows)} feature rows but {len(prefix)} prefix-token rows")
        for target, array in arrays[::-1]:  # the prefix first: the features' row count is what a reader trusts
            fd = os.open(target.array_path, os.O_WRONLY)
            try:
                _pwrite_all(fd, memoryview(array).cast("B"), target._offset + start * target.row_bytes)
                os.fsync(fd)
            finally:
                os.close(fd)
        self.done = start + rows.shape[0]
        record = {"done": self.done, "total": self.total} if self.whole else {"start": self.start, "stop": self.stop, "done": self.done}
        _write_json_atomic(self._progress, record)

    def _checked(self, start: int, rows: np.ndarray, target: LazyRows, what: str, whole: str) -> np.ndarray:
        """``rows`` as a C-order array of the store's dtype, refused when their shape or values do not fit ``target``."""
        with np.errstate(over="ignore"):  # overflow to inf is reported below
            rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != tuple(target.shape[1:]) or start + rows.shape[0] > self.stop:
            raise DatasetError(
                f"{self.path}: cannot write {'' if what == 'feature' else what + ' '}rows of shape {rows.shape} at {start} "
                f"into rows {self.start}..{self.stop - 1} of {whole} of shape {target.shape}"
            )
        if not np.isfinite(rows).all():
            bad = np.argwhere(~np.isfinite(rows))[0]
            hint = " (float16 overflows above 65504: use dtype float32)" if self.dtype == np.float16 else ""
            raise DatasetError(f"{self.path}: non-finite {what} for image {start + int(bad[0])}{hint}")
        return rows

    def finish(self) -> FeatureStore:
        """Mark the store complete and open it for reading.

        Only a writer of the whole store finishes it, and only once every row -- of
        every slice -- is on disk; the slice progress files are then folded into
        ``progress.json``.
        """
        if not self.whole:
            raise DatasetError(
                f"{self.path}: a writer of rows {self.start}..{self.stop - 1} cannot finish the store; "
                "open the whole store (create_store without rows) once every slice is written"
            )
        if self.done != self.total:
            written = sum(stop - start for start, stop in _written_rows(self.path))
            raise IncompleteStoreError(f"{self.path}: only {written} of {self.total} rows written; not marking complete")
        _write_json_atomic(self.path / PROGRESS_FILE, {"done": self.total, "total": self.total})
        for progress in self.path.glob(SLICE_PROGRESS_GLOB):
            progress.unlink()
        remove_stale_temporaries(self.path, "*.tmp")  # left by writers killed mid-write
        _write_json_atomic(self.path / COMPLETE_FILE, {"rows": self.total, "finished": _now()})
        return open_store(self.path)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _short(value: Any) -> str:
    return f"a list of {len(value)}" if isinstance(value, list) and len(value) > 4 else repr(value)


def _first_difference(old: Any, new: Any, prefix: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = _first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    if old != new:
        return f"{prefix.rstrip('.')}: {_short(old)} in the store, {_short(new)} now"
    return None


def create_store(
    path: str | Path,
    shape: tuple[int, ...],
    *,
    dtype: str = "float16",
    format: str = "npy",
    metadata: dict[str, Any] | None = None,
    rows: tuple[int, int] | None = None,
    prefix_tokens: tuple[int, int] | None = None,
) -> StoreWriter:
    """Create a store for an ``(N, C, H, W)`` array -- or reopen the one at ``path`` to resume it.

    ``prefix_tokens=(P, C)``: the store also holds ``(N, P, C)`` prefix tokens (``prefix.npy``), written
    with the rows (:meth:`StoreWriter.write`'s ``prefix``).

    Reopening requires the same shape, dtype, format and ``metadata`` (JSON-serialisable:
    backbone, image size, file list, checksums...); otherwise the error names the first
    difference. A store is never overwritten; reopening a complete one gives a writer
    with nothing left to write (``done == stop``). ``rows=(start, stop)`` gives a writer
    of that slice only (one process of a parallel extraction); create the store first
    from one process, then open the slices.
    """
    path = Path(path).expanduser()
    if dtype not in _DTYPES:
        raise ValueError(f"store dtype must be one of {_DTYPES}, got {dtype!r}")
    if format not in STORE_FORMATS:
        raise ValueError(f"store format must be one of {list(STORE_FORMATS)}, got {format!r}")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"store shape must be (N, C, H, W) with positive sizes, got {shape}")
    wanted = {"shape": list(shape), "dtype": dtype, "format": format, "metadata": json.loads(json.dumps(metadata or {}))}
    if prefix_tokens is not None:
        prefix_shape = [shape[0], *(int(s) for s in prefix_tokens)]
        if len(prefix_shape) != 3 or min(prefix_shape) < 1:
            raise ValueError(f"prefix_tokens must be (P, C) with positive sizes, got {prefix_tokens}")
        wanted["prefix_shape"] = prefix_shape
    if is_store(path):
        info = _read_json(path / METADATA_FILE)
        difference = _first_difference({k: info.get(k) for k in wanted}, wanted)
        if difference:
            state = "a complete store" if (path / COMPLETE_FILE).is_file() else "an unfinished extraction"
            raise DatasetError(f"{path}: holds {state} with other settings ({difference}); delete it or choose another output")
        return StoreWriter(path, rows)  # resume (or, when complete, nothing left to write)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise DatasetError(f"{path}: exists and is not a zslkit feature store; refusing to write into it")
    dt = np.dtype(dtype).newbyteorder("<")
    arrays = {STORE_FORMATS[format]: ("features", tuple(shape))}
    if "prefix_shape" in wanted:
        arrays[PREFIX_FILES[format]] = ("prefix", tuple(wanted["prefix_shape"]))
    nbytes = sum(int(np.prod(s, dtype=np.int64)) * dt.itemsize for _, s in arrays.values())
    path.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path.parent).free
    if free < nbytes:
        raise DatasetError(f"{path}: not enough disk space: the store needs {nbytes / 1e9:.1f} GB, {free / 1e9:.1f} GB free")
    from zslkit import __version__

    # Build the store beside its destination and rename it into place, so that an
    # interruption here never leaves a half-made directory at ``path``.
    staging = path.with_name(f".{path.name}.creating")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    info = {"zslkit_store": _STORE_VERSION, "zslkit_version": __version__, "created": _now(), **wanted}
    for name, (key, array_shape) in arrays.items():
        header = (_npy_header(array_shape, dt) if format == "npy"
                  else _safetensors_header(array_shape, dt, {"zslkit_store": str(_STORE_VERSION)}, key))
        with open(staging / name, "wb") as f:
            f.write(header)
            f.truncate(len(header) + int(np.prod(array_shape, dtype=np.int64)) * dt.itemsize)  # sparse: blocks come with the rows
    _write_json_atomic(staging / PROGRESS_FILE, {"done": 0, "total": shape[0]})
    _write_json_atomic(staging / METADATA_FILE, info)
    if path.exists():
        path.rmdir()  # checked empty above
    os.replace(staging, path)
    return StoreWriter(path, rows)
