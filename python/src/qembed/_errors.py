"""Exceptions: the library's status codes mapped to Python's.

`Error` (a RuntimeError) carries the library's message and status code.
Statuses that mean the caller's input was wrong raise `InputError`, which is
both a `qembed.Error` and a `ValueError`, so `except ValueError` catches bad
input as Python code expects and `except qembed.Error` catches everything the
library reports.
"""
from typing import Optional

from ._qembed_cffi import ffi, lib


class Error(RuntimeError):
    """An error reported by libqembed: `code` is the qembed_status value,
    `status` its fixed text ("model format error", ...)."""

    def __init__(self, message: str, code: int = 0, status: str = ""):
        super().__init__(message)
        self.code = code
        self.status = status


class InputError(Error, ValueError):
    """The input (a text, an option) is invalid: empty text, too many tokens,
    invalid UTF-8, an out-of-range dimension."""


class ModelError(Error):
    """The model cannot be read: missing file, malformed or unsupported
    checkpoint, unknown repo id."""


class PlacementError(Error):
    """No device (or split of devices) can hold the model within its budget."""


_INPUT = {lib.QEMBED_ERR_INVALID_ARGUMENT, lib.QEMBED_ERR_INVALID_UTF8,
          lib.QEMBED_ERR_INPUT_TOO_LONG, lib.QEMBED_ERR_EMPTY_INPUT}
_MODEL = {lib.QEMBED_ERR_IO, lib.QEMBED_ERR_MODEL_FORMAT, lib.QEMBED_ERR_UNSUPPORTED,
          lib.QEMBED_ERR_NOT_FOUND}


def raise_status(status: int, err, rewrite=None) -> None:
    """Raises the exception for a failed call; `err` is the qembed_error the
    call filled. `rewrite` may adjust the message (batch-relative indices)."""
    message = ffi.string(err.message).decode("utf-8", "replace")
    if not message:
        message = ffi.string(lib.qembed_status_str(status)).decode()
    if rewrite is not None:
        message = rewrite(message)
    if status in _INPUT:
        cls = InputError
    elif status in _MODEL:
        cls = ModelError
    elif status == lib.QEMBED_ERR_PLACEMENT:
        cls = PlacementError
    else:
        cls = Error
    raise cls(message, int(status), ffi.string(lib.qembed_status_str(status)).decode())


def check(status: int, err, rewrite: Optional[object] = None) -> None:
    if status != lib.QEMBED_OK:
        raise_status(status, err, rewrite)


for _cls in (Error, InputError, ModelError, PlacementError):
    _cls.__module__ = "qembed"  # shown as qembed.InputError in tracebacks
