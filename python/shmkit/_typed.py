"""Typed queues: ``Queue(name, maxsize, format=...)`` (or ``dtype=...``).

``shmkit.Queue`` is the pickling byte queue of ``_shmkit.Queue`` unless it
is given a ``format`` (a ``struct`` format string) or a numpy ``dtype``:
then it returns a ``TypedQueue``, whose items have one fixed layout and
which a Rust ``shmkit::mpmc::Receiver<T>`` / ``Sender<T>`` opens by the same
name, for a ``T`` of that layout (the crate's structural type check).
"""

import sys

from . import _shmkit
from ._shmkit import TypedQueue


class _QueueType(type):
    """``isinstance(q, shmkit.Queue)`` holds for every queue ``Queue(...)``
    makes (and, as in ``multiprocessing``, for ``JoinableQueue`` and
    ``SimpleQueue``), typed ones included."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, (_shmkit.Queue, TypedQueue))

    def __subclasscheck__(cls, sub):
        return issubclass(sub, (_shmkit.Queue, TypedQueue))


class Queue(_shmkit.Queue, metaclass=_QueueType):
    __doc__ = (_shmkit.Queue.__doc__ or "") + """

    With ``format=`` (a ``struct`` format string such as ``"<qd"``) or
    ``dtype=`` (a numpy dtype, if numpy is installed) the queue is typed: a
    ``TypedQueue`` (see its docstring), whose items are packed to that
    layout and which Rust programs open as ``mpmc::Receiver<T>`` /
    ``Sender<T>`` for a ``#[repr(C)]`` ``T`` of the same layout.
    """

    __slots__ = ()

    def __new__(cls, name, maxsize=0, *, format=None, dtype=None, **kwargs):
        if format is None and dtype is None:
            return super().__new__(cls, name, maxsize, **kwargs)
        if dtype is None:
            return TypedQueue(name, maxsize, format=format, **kwargs)
        if format is not None:
            raise TypeError("Queue() takes format= or dtype=, not both")
        return DtypeQueue(name, maxsize, dtype=dtype, **kwargs)


def dtype_format(dtype):
    """The ``struct`` format string with the layout of the numpy ``dtype``:
    its primitive fields (nested structs and sub-arrays flattened) in offset
    order, native byte order and standard sizes (``=``), gaps and trailing
    bytes as explicit pad bytes (``x``: a Rust ``[u8; N]`` field).

    ``ValueError`` for what no Rust ``#[repr(C)]`` type holds: overlapping
    fields, the other byte order, objects, half floats, complex numbers,
    unicode strings, datetimes.
    """
    import numpy as np

    dt = np.dtype(dtype)
    leaves = []

    def walk(d, at):
        if d.subdtype is not None:
            base, shape = d.subdtype
            n = 1
            for k in shape:
                n *= k
            for i in range(n):
                walk(base, at + i * base.itemsize)
        elif d.names is not None:
            for field in d.names:
                sub, off = d.fields[field][:2]
                walk(sub, at + off)
        else:
            leaves.append((at, d))

    walk(dt, 0)
    leaves.sort(key=lambda leaf: leaf[0])
    native = "<" if sys.byteorder == "little" else ">"
    parts, end = ["="], 0
    for at, d in leaves:
        if at < end:
            raise ValueError(f"dtype {dt} has overlapping fields at byte {at}")
        if at > end:
            parts.append(f"{at - end}x")
        if d.byteorder not in ("=", "|", native):
            raise ValueError(
                f"dtype {dt} has a field {d} in the other byte order; a Rust type "
                f"is in the host's ({sys.byteorder}-endian)"
            )
        size = d.itemsize
        if d.kind in "iu" and size in (1, 2, 4, 8):
            code = {1: "b", 2: "h", 4: "i", 8: "q"}[size]
            code = code.upper() if d.kind == "u" else code
        elif d.kind == "f" and size in (4, 8):
            code = "f" if size == 4 else "d"
        elif d.kind == "b":
            code = "?"
        elif d.kind in "SV" and size > 0:
            code = f"{size}s"
        else:
            raise ValueError(f"dtype {dt} has a field {d}, which no Rust primitive holds")
        parts.append(code)
        end = at + size
    if dt.itemsize > end:
        parts.append(f"{dt.itemsize - end}x")
    return "".join(parts)


class DtypeQueue(TypedQueue):
    """A ``TypedQueue`` whose items are numpy values of one dtype:
    ``Queue(name, maxsize, dtype=...)``.

    ``put`` takes anything ``numpy.asarray(obj, dtype)`` turns into one
    item (a tuple for a structured dtype, a numpy structured scalar, a
    number); ``get`` returns a numpy scalar of the dtype (``numpy.void`` for
    a structured one). The layout is ``dtype_format(dtype)``'s, and must
    match a Rust ``#[repr(C)]`` type as a ``format=`` does.
    """

    def __new__(cls, name, maxsize=0, *, dtype, **kwargs):
        import numpy as np

        dt = np.dtype(dtype)
        self = super().__new__(cls, name, maxsize, format=dtype_format(dt), raw=True, **kwargs)
        self._dtype = dt
        return self

    @property
    def dtype(self):
        """The numpy dtype of the items."""
        return self._dtype

    def put(self, obj, block=True, timeout=None):
        import numpy as np

        data = np.asarray(obj, dtype=self._dtype)
        if data.shape != ():
            raise ValueError(f"an item of dtype {self._dtype} is one value, not shape {data.shape}")
        super().put(data.tobytes(), block, timeout)

    def put_nowait(self, obj):
        self.put(obj, False)

    def get(self, block=True, timeout=None):
        import numpy as np

        return np.frombuffer(super().get(block, timeout), dtype=self._dtype)[0]

    def get_nowait(self):
        return self.get(False)
