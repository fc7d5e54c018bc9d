"""Type stubs of shmkit's native module; ``shmkit`` re-exports every name."""

import array
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Literal, Optional, Union, overload

from typing_extensions import Buffer

MAX_NAME_LEN: int
TYPECODES: str
DEFAULT_PIPE_CAPACITY: int
DEFAULT_QUEUE_MAXSIZE: int
DEFAULT_ITEM_SIZE: int

TypecodeOrType = Union[str, type]
Scalar = Union[int, float, bytes]

class WriterLock:
    """The writer lock of a Value or Array: a re-entrant lock across processes."""

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool: ...
    def release(self) -> None: ...
    def _is_owned(self) -> bool: ...
    def __enter__(self) -> bool: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class Value:
    """A number shared by name: multiprocessing.Value for unrelated processes."""

    def __init__(
        self,
        typecode_or_type: TypecodeOrType,
        name: str,
        *args: Scalar,
        create: Optional[bool] = None,
        lock: bool = True,
    ) -> None: ...
    value: Any
    @property
    def name(self) -> str: ...
    @property
    def typecode(self) -> str: ...
    def get_lock(self) -> WriterLock: ...

class Array:
    """A fixed-length array shared by name: multiprocessing.Array for unrelated processes."""

    def __init__(
        self,
        typecode_or_type: TypecodeOrType,
        name: str,
        size_or_initializer: Union[int, Iterable[Scalar], bytes, None] = None,
        *,
        create: Optional[bool] = None,
        lock: bool = True,
    ) -> None: ...
    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, key: int) -> Any: ...
    @overload
    def __getitem__(self, key: slice) -> Any: ...
    def __setitem__(self, key: Union[int, slice], value: Any) -> None: ...
    def __iter__(self) -> Iterator[Any]: ...
    def tolist(self) -> Any:
        """A consistent copy: a list (bytes for typecode 'c')."""
    def tobytes(self) -> bytes: ...
    def snapshot(self) -> Union[array.array, bytes]:
        """A consistent copy as an array.array (bytes for 'c'), for numpy.frombuffer."""
    def get_lock(self) -> WriterLock: ...
    @property
    def name(self) -> str: ...
    @property
    def typecode(self) -> str: ...

class Connection:
    """One end of a named pipe: multiprocessing's Connection for unrelated processes."""

    def __init__(
        self,
        name: str,
        side: Literal["duplex", "send", "recv"] = "duplex",
        *,
        create: Optional[bool] = None,
        capacity: int = ...,
    ) -> None: ...
    def send(self, obj: Any, *, timeout: Optional[float] = None) -> None: ...
    def send_bytes(
        self,
        buf: Buffer,
        offset: int = 0,
        size: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
    ) -> None: ...
    def recv(self, *, timeout: Optional[float] = None) -> Any: ...
    def recv_bytes(
        self, maxlength: Optional[int] = None, *, timeout: Optional[float] = None
    ) -> bytes: ...
    def recv_bytes_into(
        self, buf: Buffer, offset: int = 0, *, timeout: Optional[float] = None
    ) -> int: ...
    def poll(self, timeout: Optional[float] = 0.0) -> bool: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def readable(self) -> bool: ...
    @property
    def writable(self) -> bool: ...
    @property
    def name(self) -> str: ...
    @property
    def max_message_len(self) -> int: ...
    def __enter__(self) -> "Connection": ...
    def __exit__(self, *args: object) -> bool: ...

class Queue:
    """A queue shared by name: multiprocessing.Queue for unrelated processes."""

    def __init__(
        self,
        name: str,
        maxsize: int = 0,
        *,
        create: Optional[bool] = None,
        item_size: int = ...,
        raw: bool = False,
    ) -> None: ...
    def put(self, obj: Any, block: bool = True, timeout: Optional[float] = None) -> None: ...
    def put_nowait(self, obj: Any) -> None: ...
    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any: ...
    def get_nowait(self) -> Any: ...
    def qsize(self) -> int: ...
    def empty(self) -> bool: ...
    def full(self) -> bool: ...
    def close(self) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def maxsize(self) -> int: ...
    @property
    def item_size(self) -> int: ...

class JoinableQueue(Queue):
    """A Queue with task_done() and join(): multiprocessing.JoinableQueue by name."""

    def task_done(self) -> None: ...
    def join(self, timeout: Optional[float] = None) -> None: ...

class SimpleQueue(Queue):
    """multiprocessing.SimpleQueue by name."""

class SegmentInfo:
    """What shmkit.ls() and shmkit.inspect() say of one segment."""

    name: str
    kind: str
    size: int
    path: str
    capacity: Optional[int]
    element: Optional[str]
    used: Optional[int]
    contents: Optional[str]
    peers: list[tuple[int, str, bool]]
    stale: bool
    removed: bool
    problems: list[str]

def remove(name: str) -> None: ...
def ls() -> list[SegmentInfo]: ...
def inspect(name: str) -> SegmentInfo: ...
