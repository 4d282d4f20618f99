"""The output formats of the inference commands, one meaning everywhere: `json` is one
JSON document, `jsonl` one JSON object per line (flushed as each is known), `csv` a table
with a header row, `table` text for people. Torch-free (the command line lists them)."""

from __future__ import annotations

from pathlib import Path

from ..errors import FrosterError

#: predict and search
RESULT_FORMATS = ("table", "json", "jsonl", "csv")
#: timeline (its segment table always goes to stdout)
TIMELINE_FORMATS = ("jsonl", "json", "csv")

_SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


def format_for(output, fmt: str | None = None, formats=RESULT_FORMATS,
               default: str | None = "table") -> str:
    """The format asked for, else the one `output`'s name ends with, else `default` (None:
    an error saying how to choose)."""
    if fmt:
        if fmt not in formats:
            raise FrosterError(f"unknown format {fmt!r}; choose from {', '.join(formats)}")
        return fmt
    found = _SUFFIXES.get(Path(output).suffix.lower()) if output else None
    if found in formats:
        return found
    if default is None:
        raise FrosterError(f"{output}: cannot tell the format from the name; end it in "
                           f"{', '.join('.' + f for f in formats)}, or give --format")
    return default
