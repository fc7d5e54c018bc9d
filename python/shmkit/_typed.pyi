from typing import Any, Optional, overload

from ._shmkit import Queue as _Queue
from ._shmkit import TypedQueue

class Queue(_Queue):
    """A queue shared by name; typed (a TypedQueue) with format= or dtype=."""

    @overload
    def __new__(
        cls,
        name: str,
        maxsize: int = 0,
        *,
        create: Optional[bool] = None,
        item_size: int = ...,
        raw: bool = False,
    ) -> Queue: ...
    @overload
    def __new__(
        cls,
        name: str,
        maxsize: int = 0,
        *,
        format: str,
        create: Optional[bool] = None,
        raw: bool = False,
    ) -> TypedQueue: ...
    @overload
    def __new__(
        cls,
        name: str,
        maxsize: int = 0,
        *,
        dtype: Any,
        create: Optional[bool] = None,
    ) -> DtypeQueue: ...

class DtypeQueue(TypedQueue):
    """A TypedQueue of numpy values of one dtype: Queue(name, dtype=...)."""

    def __init__(
        self, name: str, maxsize: int = 0, *, dtype: Any, create: Optional[bool] = None
    ) -> None: ...
    @property
    def dtype(self) -> Any: ...

def dtype_format(dtype: Any) -> str: ...
