"""Video lists and class files in the formats the published protocols use.

Video lists: ``path,label`` (FROSTER / PySlowFast CSV) or ``path label``
(mmaction2 / ViFi-CLIP), one video per line.  The separator is detected from the
first entry; the label is always the last field, so paths may contain spaces
(and commas in the space separated form).

Class files, by extension:
  ``.json``  ``{"0": "Name", ...}`` or ``{"0": "Name: description", ...}``,
             or a list of names (or of objects with a ``"word"``/``"name"`` key);
  ``.csv``   ``index,name`` rows, with an optional header (``id,name``);
  other      one name per line, the line number is the index (mmaction2 label maps).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import FrosterError

__all__ = ["AnnotationError", "VideoItem", "read_annotations", "read_class_names"]


class AnnotationError(FrosterError):
    """A video list or class file could not be used; the message names file and line."""


@dataclass(frozen=True)
class VideoItem:
    path: str  # joined with the data root
    label: int
    line: int  # 1-based line in the list file, for messages


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise AnnotationError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise AnnotationError(f"{path}: cannot read ({e.strerror})") from None
    return text.splitlines()  # handles \n, \r\n and a missing final newline


def _split_entry(text: str, sep: str) -> tuple[str, str] | None:
    """Split one line into (path, label text) at the last comma or whitespace."""
    parts = text.rsplit(sep, 1) if sep == "," else text.rsplit(None, 1)
    if len(parts) != 2 or not parts[0].strip():
        return None
    return parts[0].strip(), parts[1].strip()


def _is_int(s: str) -> bool:
    return s.lstrip("-").isdigit()


def read_annotations(
    list_file: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    num_classes: int | None = None,
) -> list[VideoItem]:
    """Read a video list. Paths are joined with ``data_root`` (kept as written if None).

    A first line whose label is not a number and whose path has no extension
    (``path,label`` / ``file,label``) is taken as a header and skipped.
    """
    list_file = Path(list_file)
    lines = _read_lines(list_file)
    sep: str | None = None
    header_checked = False
    items: list[VideoItem] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        if sep is None:  # the first entry decides the separator
            comma, space = _split_entry(text, ","), _split_entry(text, " ")
            sep = " " if space and _is_int(space[1]) and not (comma and _is_int(comma[1])) else ","
            if not header_checked and not any(e and _is_int(e[1]) for e in (comma, space)):
                header_checked = True
                if "." not in text:
                    sep = None
                    continue  # a header such as "path,label"
        header_checked = True
        entry = _split_entry(text, sep)
        form = "path,label" if sep == "," else "path label"
        if entry is None or not _is_int(entry[1]):
            raise AnnotationError(
                f"{list_file}:{number}: cannot parse {raw!r}; expected '{form}' with an integer label"
            )
        path, label = entry[0], int(entry[1])
        if label < 0 or (num_classes is not None and label >= num_classes):
            valid = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
            raise AnnotationError(
                f"{list_file}:{number}: label {label} is out of range ({valid}); "
                "does the class file match this video list?"
            )
        if data_root is not None:
            path = os.path.join(data_root, path)
        items.append(VideoItem(path=path, label=label, line=number))
    if not items:
        raise AnnotationError(f"{list_file}: no videos listed (empty file)")
    return items


def _check_indexed(file: Path, pairs: list[tuple[int, str, int]]) -> list[str]:
    """pairs = (index, name, line); indices must be exactly 0..n-1."""
    if not pairs:
        raise AnnotationError(f"{file}: no classes (empty file)")
    names: dict[int, str] = {}
    for index, name, line in pairs:
        where = f"{file}:{line}" if line else str(file)
        if index in names:
            raise AnnotationError(f"{where}: duplicate class index {index}")
        if index < 0:
            raise AnnotationError(f"{where}: negative class index {index}")
        if not name.strip():
            raise AnnotationError(f"{where}: empty class name for index {index}")
        names[index] = name.strip()
    missing = sorted(set(range(len(names))) - set(names))
    if missing:
        raise AnnotationError(
            f"{file}: class indices must be 0..{len(names) - 1} without gaps; "
            f"missing {missing[:10]}{' ...' if len(missing) > 10 else ''}"
        )
    return [names[i] for i in range(len(names))]


def _json_classes(file: Path, text: str) -> list[str]:
    def no_duplicate_keys(pairs):
        seen = {}
        for key, value in pairs:
            if key in seen:
                raise AnnotationError(f"{file}: duplicate class index {key!r}")
            seen[key] = value
        return seen

    try:
        data = json.loads(text, object_pairs_hook=no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{file}:{e.lineno}: invalid JSON ({e.msg})") from None
    if isinstance(data, dict):
        pairs = []
        for key, value in data.items():
            if not _is_int(str(key).strip()) or not isinstance(value, str):
                raise AnnotationError(
                    f"{file}: expected {{\"index\": \"name\"}}, found {key!r}: {value!r}"
                )
            pairs.append((int(key), value, 0))
        return _check_indexed(file, pairs)
    if isinstance(data, list):
        pairs = []
        for i, value in enumerate(data):
            if isinstance(value, dict):
                value = value.get("word", value.get("name"))
            if not isinstance(value, str):
                raise AnnotationError(
                    f"{file}: entry {i} has no class name (expected a string or "
                    "an object with a 'word' or 'name' key)"
                )
            pairs.append((i, value, 0))
        return _check_indexed(file, pairs)
    raise AnnotationError(f"{file}: expected a JSON object or list of class names")


def _csv_classes(file: Path, text: str) -> list[str]:
    pairs = []
    for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2 or not _is_int(row[0].strip()):
            if not pairs and line == 1:
                continue  # header, e.g. "id,name"
            raise AnnotationError(f"{file}:{line}: expected 'index,name', found {','.join(row)!r}")
        pairs.append((int(row[0]), ",".join(row[1:]), line))
    return _check_indexed(file, pairs)


def read_class_names(class_file: str | os.PathLike) -> list[str]:
    """Class texts in index order, as written ("Name" or "Name: description")."""
    file = Path(class_file)
    lines = _read_lines(file)
    text = "\n".join(lines)
    if not text.strip():
        raise AnnotationError(f"{file}: no classes (empty file)")
    suffix = file.suffix.lower()
    if suffix == ".json":
        return _json_classes(file, text)
    if suffix == ".csv":
        return _csv_classes(file, text)
    while lines and not lines[-1].strip():
        lines.pop()
    for line, name in enumerate(lines, start=1):
        if not name.strip():
            raise AnnotationError(
                f"{file}:{line}: empty line inside a one-name-per-line class file "
                "(the line number is the class index)"
            )
    return [name.strip() for name in lines]
