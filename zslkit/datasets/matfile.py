"""Generic MATLAB ``.mat`` helpers: :func:`load_mat`, :func:`mat_strings`, and the structural check below.

:func:`load_mat` reads named variables with one-line errors; :func:`mat_strings` turns a
cell array of strings into a list. Both are used by every ``.mat`` reader (xlsa17's
``res101.mat`` and ``att_splits.mat``, SUN's ``attributes.mat``).

A structural check of MATLAB 5/7 ``.mat`` files runs before :func:`scipy.io.loadmat` sees them.

``scipy.io.loadmat`` (1.17) can crash the interpreter (a segmentation fault, not an
exception) on some damaged files, e.g. when a data element's type code is not one of
MATLAB's. :func:`check_mat_structure` walks the file's element tags without building
any array -- compressed variables are inflated as a stream, in chunks -- and refuses a
file whose tags are unknown, whose sizes overrun their parent element or whose
numeric data does not fill the declared dimensions, with a one-line
:class:`~zslkit.datasets.DatasetError` naming the file.

The format is MathWorks' "MAT-File Format" (version 5, used by ``-v6`` and ``-v7``):
a 128-byte header, then tagged data elements; a tag is ``(type, nbytes)`` as two
``uint32`` (or, for at most 4 bytes of data, one ``uint32`` with the size in its
upper half), and every element is padded to 8 bytes.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from zslkit.datasets.checks import file_error, require_file, require_keys

__all__ = ["check_mat_structure", "load_mat", "mat_strings"]

MI_MATRIX, MI_COMPRESSED = 14, 15
#: Item size of the numeric data types (miINT8 ... miUTF32).
_ITEM_SIZE = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
_NUMERIC_CLASSES = range(6, 16)  # mxDOUBLE_CLASS ... mxUINT64_CLASS
_MAX_DEPTH = 32
_CHUNK = 1 << 20


class _Damaged(Exception):
    """Internal: the walk found a problem (turned into a DatasetError naming the file)."""


class _FileStream:
    """Bytes of the file, read forward."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    def read(self, n: int) -> bytes:
        data = self.handle.read(n)
        if len(data) != n:
            raise _Damaged(f"file ends inside an element (wanted {n} more bytes)")
        return data

    def skip(self, n: int) -> None:
        self.handle.seek(n, 1)


class _InflateStream:
    """The inflated bytes of one miCOMPRESSED element, produced chunk by chunk (never all in memory)."""

    def __init__(self, source: _FileStream, compressed: int) -> None:
        self.source, self.left = source, compressed
        self.inflater = zlib.decompressobj()
        self.buffer = b""

    def _fill(self, n: int) -> None:
        while len(self.buffer) < n:
            if self.inflater.unconsumed_tail:
                chunk = self.inflater.unconsumed_tail
            elif self.left:
                chunk = self.source.read(min(self.left, _CHUNK))
                self.left -= len(chunk)
            else:
                raise _Damaged("compressed variable ends inside an element")
            try:
                self.buffer += self.inflater.decompress(chunk, max(n - len(self.buffer), _CHUNK))
            except zlib.error as exc:
                raise _Damaged(f"compressed variable is damaged ({exc})") from None
            if self.inflater.eof and len(self.buffer) < n:
                raise _Damaged("compressed variable ends inside an element")

    def read(self, n: int) -> bytes:
        self._fill(n)
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def skip(self, n: int) -> None:
        while n:
            step = min(n, _CHUNK)
            self.read(step)
            n -= step

    def finish(self) -> None:
        """Skip the rest of the compressed bytes."""
        self.source.skip(self.left)


def _tag(stream, endian: str) -> tuple[int, int, bytes | None]:
    """``(type, nbytes, small data or None)`` of the next element."""
    raw = stream.read(8)
    kind, nbytes = struct.unpack(endian + "II", raw)
    if kind >> 16:  # small data element: size in the upper half, data in the second word
        kind, nbytes = kind & 0xFFFF, kind >> 16
        if nbytes > 4:
            raise _Damaged(f"small data element declares {nbytes} bytes (at most 4)")
        return kind, nbytes, raw[4 : 4 + nbytes]
    return kind, nbytes, None


def _padded(nbytes: int) -> int:
    return nbytes + (-nbytes % 8)


def _walk_matrix(stream, length: int, endian: str, depth: int) -> None:
    """The sub-elements of one miMATRIX of ``length`` bytes: flags, dimensions, name, data..."""
    if depth > _MAX_DEPTH:
        raise _Damaged("variables nested too deeply")
    if length == 0:  # an empty matrix
        return
    used, position, array_class, dims, complex_ = 0, 0, None, None, False
    while used < length:
        kind, nbytes, small = _tag(stream, endian)
        size = 8 if small is not None else 8 + _padded(nbytes)
        if used + size > length:
            raise _Damaged(f"element of {nbytes} bytes overruns its variable ({length - used - 8} left)")
        if kind == MI_MATRIX:
            if small is not None:
                raise _Damaged("a variable cannot be a small data element")
            _walk_matrix(stream, _padded(nbytes), endian, depth + 1)
        elif kind not in _ITEM_SIZE:
            raise _Damaged(f"unknown data type {kind} in a variable")
        else:
            data = small if small is not None else None
            numeric_data = array_class in _NUMERIC_CLASSES and position in (3, 4)
            if position in (0, 1) or numeric_data:
                data = data if data is not None else stream.read(nbytes)
                if small is None:
                    stream.skip(_padded(nbytes) - nbytes)
            elif small is None:
                stream.skip(_padded(nbytes))
            if position == 0:
                if kind != 6 or nbytes != 8:
                    raise _Damaged("variable does not start with its array flags")
                flags = struct.unpack(endian + "I", data[:4])[0]
                array_class, complex_ = flags & 0xFF, bool(flags & 0x800)
            elif position == 1:
                if kind != 5 or nbytes < 8 or nbytes % 4:
                    raise _Damaged("variable has no valid dimensions")
                dims = np.frombuffer(data, dtype=endian + "i4")
                if (dims < 0).any():
                    raise _Damaged(f"variable has negative dimensions {dims.tolist()}")
            elif numeric_data:
                count = int(np.prod(dims.astype(np.int64)))
                if nbytes != count * _ITEM_SIZE[kind]:
                    raise _Damaged(f"numeric data of {nbytes} bytes for dimensions {dims.tolist()}")
        used += size
        position += 1
    if array_class in _NUMERIC_CLASSES and position < (5 if complex_ else 4):
        raise _Damaged("numeric variable lacks its " + ("imaginary part" if complex_ and position == 4 else "data"))


def _walk_file(handle: BinaryIO, size: int) -> None:
    header = handle.read(128)
    if len(header) < 128 or not header.startswith(b"MATLAB"):
        raise _Damaged("no MATLAB 5/7 header (not a .mat file, or a MATLAB 4 one)")
    endian = {b"IM": "<", b"MI": ">"}.get(header[126:128])
    if endian is None:
        raise _Damaged("header has no endian indicator")
    if struct.unpack(endian + "H", header[124:126])[0] == 0x0200:
        raise _Damaged("MATLAB 7.3 (HDF5) .mat files are not supported; save it with -v7")
    stream, position = _FileStream(handle), 128
    while position < size:
        if size - position < 8:
            raise _Damaged(f"{size - position} stray bytes at the end")
        kind, nbytes, small = _tag(stream, endian)
        if small is not None or kind not in (MI_MATRIX, MI_COMPRESSED):
            raise _Damaged(f"top-level element of type {kind} at byte {position} (expected a variable)")
        if nbytes > size - position - 8:
            raise _Damaged(f"truncated? the variable at byte {position} declares {nbytes} bytes, {size - position - 8} remain")
        if kind == MI_COMPRESSED:
            inner = _InflateStream(stream, nbytes)
            inner_kind, inner_bytes, inner_small = _tag(inner, endian)
            if inner_kind != MI_MATRIX or inner_small is not None:
                raise _Damaged(f"compressed element at byte {position} does not hold a variable")
            _walk_matrix(inner, inner_bytes, endian, 0)
            inner.finish()
            position += 8 + nbytes
        else:
            _walk_matrix(stream, _padded(nbytes), endian, 0)
            position += 8 + _padded(nbytes)


def check_mat_structure(path: str | Path) -> None:
    """Raise :class:`~zslkit.datasets.DatasetError` naming ``path`` unless its element structure is sound."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            _walk_file(handle, path.stat().st_size)
    except _Damaged as exc:
        raise file_error(path, f"damaged MATLAB file: {exc}") from None
    except struct.error as exc:
        raise file_error(path, f"damaged MATLAB file: {exc}") from None


def load_mat(path: str | Path, keys: list[str], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """The variables ``keys`` (required) and ``optional`` of a MATLAB file, with one-line errors."""
    import scipy.io

    path = require_file(path, "MATLAB file")
    check_mat_structure(path)  # scipy can crash the interpreter on some damaged files
    try:
        content = scipy.io.loadmat(str(path), variable_names=[*keys, *optional])
    except Exception as exc:  # noqa: BLE001 - scipy raises many types for damaged files
        raise file_error(path, f"cannot read MATLAB file ({type(exc).__name__}: {exc}); truncated or not a .mat?") from None
    require_keys(content, keys, path)
    return content


def mat_strings(cell: Any, path: str | Path, what: str) -> list[str]:
    """A MATLAB cell array (or char matrix) of strings as a Python list."""
    values = np.asarray(cell)
    if values.dtype.kind == "U":
        return [str(v).strip() for v in values.reshape(-1)]
    if values.dtype != object:
        raise file_error(path, f"{what} must be a cell array of strings, found dtype {values.dtype}")
    out = []
    for position, item in enumerate(values.reshape(-1)):
        item = np.asarray(item).reshape(-1)
        if item.size != 1 or item.dtype.kind != "U":
            raise file_error(path, f"{what}[{position}] is not a string (found {item.dtype} of size {item.size})")
        out.append(str(item[0]).strip())
    return out
