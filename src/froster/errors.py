"""The one kind of error that means "the user can fix this": a bad argument, a missing or
malformed file, weights that cannot be had. The command line prints it as one line and
exits with 2; any other exception is a bug and shows its traceback (`--debug` shows the
traceback for both).

FrosterError is a ValueError, so code and tests that catch ValueError keep doing so."""

from __future__ import annotations


class FrosterError(ValueError):
    """A user's mistake, said in one line that names the file or value and the fix."""


class MissingFileError(FrosterError, FileNotFoundError):
    """A file or folder the user named does not exist."""
