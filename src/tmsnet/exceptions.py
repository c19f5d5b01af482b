"""Typed exceptions raised by tmsnet.

Every error a user can cause (bad input, wrong space, unwritable output) is a
subclass of :class:`TmsnetError`, and also of the closest built-in exception
(``ValueError``, ``FileNotFoundError``, ``OSError``) so that generic handlers
keep working. Messages say what is wrong *and* what to do about it; the CLI
prints them without a traceback.
"""

from __future__ import annotations


class TmsnetError(Exception):
    """Base class of all errors raised by tmsnet for bad input or environment."""


class InputFileNotFoundError(TmsnetError, FileNotFoundError):
    """An input file or folder does not exist."""


class InvalidImageError(TmsnetError, ValueError):
    """An image has the wrong dimensionality, data type or content."""


class GridMismatchError(TmsnetError, ValueError):
    """Two images that must share a voxel grid (shape and affine) do not."""


class SpaceError(TmsnetError, ValueError):
    """A coordinate space is unknown, unsupported, or mixed with another."""


class ConfoundsError(TmsnetError, ValueError):
    """The confounds table does not fit the scan or lacks required columns."""


class ScanTooShortError(TmsnetError, ValueError):
    """Too few frames remain to estimate connectivity reliably."""


class EmptyRegionError(TmsnetError, ValueError):
    """A region of interest holds no usable voxel after masking."""


class UnknownMethodError(TmsnetError, ValueError):
    """A method name is not one tmsnet knows."""


class InvalidParameterError(TmsnetError, ValueError):
    """A parameter value is out of its valid range."""


class OutputNotWritableError(TmsnetError, OSError):
    """The output folder cannot be created or written."""


class OutputLockedError(TmsnetError, RuntimeError):
    """The output folder is in use by another tmsnet run (see :mod:`tmsnet.io.lock`)."""


class SchedulerConnectionError(TmsnetError, ConnectionError):
    """A Dask scheduler given with ``--dask-scheduler`` cannot be reached."""


class DerivativesValidationError(TmsnetError, ValueError):
    """An output folder breaks the BIDS-Derivatives rules tmsnet checks."""


class EEGDataError(TmsnetError, ValueError):
    """An EEG recording cannot be used as given (unreadable format, no TMS pulses, no positions)."""
