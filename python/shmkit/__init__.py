"""multiprocessing's vocabulary for unrelated processes, by name.

``Queue``, ``JoinableQueue``, ``SimpleQueue``, ``Pipe``, ``Connection``,
``Value``, ``Array``, ``Lock``, ``RLock``, ``Semaphore``, ``BoundedSemaphore``,
``Event``, ``Condition``, ``Barrier``, and ``Dict`` and ``List`` (a Manager's
``dict()`` and ``list()`` without the manager process) work like their
``multiprocessing`` namesakes, except that processes find them by a name
(``shmkit.Value('i', 'hits')``) instead of inheriting them from a parent, and
that they live in shared memory: a segment ``/dev/shm/shmkit.<name>`` that
persists until ``shmkit.remove(name)``. Rust programs attach to the same
names with the ``shmkit`` crate (``shmkit::Value::<i32>::open("hits")``).

Blocking calls release the GIL, take ``timeout=`` and are interrupted by
Ctrl-C within 50 ms. Errors are ``shmkit.Error`` (an ``OSError``) and its
subclasses, most also a standard exception (``NotFoundError`` is a
``FileNotFoundError``, ``WrongTypeError`` a ``TypeError``), and the
exceptions ``multiprocessing`` and ``queue`` raise (``queue.Empty``, ``queue.Full``,
``EOFError``, ``BrokenPipeError``, ``BufferTooShort``,
``BrokenBarrierError``).
"""

from ._errors import (
    AlreadyExistsError,
    BrokenBarrierError,
    BufferTooShort,
    CorruptedError,
    Error,
    FullError,
    IncompatibleVersionError,
    InvalidArgumentError,
    InvalidNameError,
    NoSpaceError,
    NotFoundError,
    PermissionDeniedError,
    RoleTakenError,
    TooManyHandlesError,
    UninitializedError,
    WrongKindError,
    WrongTypeError,
)
from ._shmkit import (
    DEFAULT_ITEM_SIZE,
    DEFAULT_PIPE_CAPACITY,
    DEFAULT_QUEUE_MAXSIZE,
    MAX_NAME_LEN,
    TYPECODES,
    Array,
    Barrier,
    BoundedSemaphore,
    Condition,
    Connection,
    Dict,
    Event,
    JoinableQueue,
    Lock,
    RLock,
    SegmentInfo,
    Semaphore,
    SimpleQueue,
    TypedQueue,
    Value,
    inspect,
    layout,
    ls,
    remove,
)
from ._typed import DtypeQueue, Queue, dtype_format

__all__ = [
    "Queue",
    "JoinableQueue",
    "SimpleQueue",
    "TypedQueue",
    "DtypeQueue",
    "layout",
    "dtype_format",
    "Pipe",
    "Connection",
    "Value",
    "Array",
    "Lock",
    "RLock",
    "Event",
    "Semaphore",
    "BoundedSemaphore",
    "Condition",
    "Barrier",
    "Dict",
    "SegmentInfo",
    "remove",
    "ls",
    "inspect",
    "MAX_NAME_LEN",
    "TYPECODES",
    "DEFAULT_PIPE_CAPACITY",
    "DEFAULT_QUEUE_MAXSIZE",
    "DEFAULT_ITEM_SIZE",
    "Error",
    "NotFoundError",
    "AlreadyExistsError",
    "InvalidNameError",
    "InvalidArgumentError",
    "PermissionDeniedError",
    "WrongKindError",
    "WrongTypeError",
    "IncompatibleVersionError",
    "UninitializedError",
    "CorruptedError",
    "RoleTakenError",
    "TooManyHandlesError",
    "NoSpaceError",
    "BufferTooShort",
    "BrokenBarrierError",
    "FullError",
]


def Pipe(name, duplex=True, *, create=None, capacity=DEFAULT_PIPE_CAPACITY):
    """Both ends of the named pipe, in this process: ``(conn1, conn2)``.

    As ``multiprocessing.Pipe``: with ``duplex=True`` both ends send and
    receive; with ``duplex=False`` ``conn1`` only receives and ``conn2`` only
    sends. Useful between threads, or to hand one end on; two processes
    each attach their own end with ``Connection(name)`` (duplex) or
    ``Connection(name, "send")`` / ``Connection(name, "recv")``.

    ``create`` and ``capacity`` are ``Connection``'s, for the first end; the
    second end opens what the first attached.
    """
    if duplex:
        first = Connection(name, "duplex", create=create, capacity=capacity)
        return first, Connection(name, "duplex", create=False)
    reader = Connection(name, "recv", create=create, capacity=capacity)
    return reader, Connection(name, "send", create=False)
