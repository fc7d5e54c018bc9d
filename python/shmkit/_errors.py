"""The exceptions shmkit raises, as a plain Python module.

The native module (``shmkit._shmkit``) imports these classes when it raises,
so that each can have the standard exception Python code already catches as
a second base: a missing segment is a ``FileNotFoundError``, a segment of
another element type a ``TypeError``, and so on. Every attach error is a
``shmkit.Error``, itself an ``OSError`` (a segment is a named file in
``/dev/shm``). Each carries the Rust error's message, and ``segment``: the
segment's name (``None`` where there is none).
"""

import multiprocessing
import threading

__all__ = [
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
    "FullError",
    "BrokenBarrierError",
]


class Error(OSError):
    """Base class of shmkit's errors (attaching to a segment, or what it holds)."""

    segment = None


class NotFoundError(Error, FileNotFoundError):
    """No segment of that name exists (``create=False``)."""


class AlreadyExistsError(Error, FileExistsError):
    """``create=True`` found a segment of that name already there."""


class InvalidNameError(Error, ValueError):
    """Not a valid segment name: 1 to 248 bytes of ``[A-Za-z0-9_.-]``."""


class InvalidArgumentError(Error, ValueError):
    """An argument other than the name is out of range (a capacity of 0, ...)."""


class PermissionDeniedError(Error, PermissionError):
    """The system refused access, or the segment belongs to another user."""


class WrongKindError(Error, TypeError):
    """The segment holds another kind of object (a pipe opened as a Value, ...)."""


class WrongTypeError(Error, TypeError):
    """The segment holds elements of another type; the message shows both layouts."""


class IncompatibleVersionError(Error):
    """The segment was made by an incompatible version of shmkit."""


class UninitializedError(Error):
    """Its creator never finished the segment (it died half-way): remove it."""


class CorruptedError(Error):
    """The segment's contents are not what an honest peer writes."""


class RoleTakenError(Error):
    """The end (sender or receiver) is held by another live handle; ``pid`` names it."""

    pid = 0


class TooManyHandlesError(Error):
    """The segment already has its maximum number of handles attached."""


class NoSpaceError(Error):
    """The filesystem holding segments has no room for this one; nothing was created."""


class FullError(Error):
    """A ``Dict`` or ``List`` holds as many items as it was created for; the
    write changed nothing."""


class BufferTooShort(multiprocessing.BufferTooShort):
    """``recv_bytes_into``'s buffer is shorter than the next message.

    Unlike multiprocessing's, the message **stays in the pipe**: ``needed``
    says how many bytes to make room for, and the next call receives it.
    """

    needed = 0


class BrokenBarrierError(threading.BrokenBarrierError):
    """The barrier is broken: a party died, timed out, was interrupted, or
    called ``abort()``. ``segment`` names the barrier."""

    segment = None
