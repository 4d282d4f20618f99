"""Uploads: a multipart/form-data body streamed into the server's own temporary folder.

The bytes go to disk as they arrive (only the small text fields are held in memory), the
size limit is checked on the declared length before anything is read and again on every
chunk, nothing is unpickled or interpreted here, and `Upload.close` removes every file the
request left, whatever happened.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header

__all__ = ["Upload", "UploadError", "UploadedFile", "megabytes", "read_upload"]


class UploadError(Exception):
    """A request the server refuses: `status` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def megabytes(size: int) -> str:
    return f"{size / 1e6:.4g} MB"


@dataclass
class UploadedFile:
    field: str       # the form field's name
    filename: str    # the name the client gave (only shown in messages, never used as a path)
    path: Path       # where the bytes are (in the server's folder, under a name of its own)
    size: int = 0


@dataclass
class Upload:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)

    def text(self, name: str, default: str | None = None) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else default

    def texts(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))

    def close(self) -> None:
        for uploaded in self.files.values():
            uploaded.path.unlink(missing_ok=True)


def _suffix(filename: str) -> str:
    """The client's file-name ending, if it is a plain one (containers are found by their
    content; the ending only helps FFmpeg guess)."""
    suffix = Path(filename.replace("\\", "/")).suffix.lower()
    return suffix if 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ""


class _Parts:
    """The parser's callbacks: text fields to memory, files to the folder."""

    def __init__(self, upload: Upload, folder: Path, max_field_bytes: int, max_files: int):
        self.upload, self.folder = upload, folder
        self.max_field_bytes, self.max_files = max_field_bytes, max_files
        self.header_name = self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.buffer: bytearray | None = None
        self.file = None
        self.current: UploadedFile | None = None

    def callbacks(self) -> dict:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_data, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end}

    def part_begin(self) -> None:
        self.headers, self.header_name, self.header_value = {}, b"", b""

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def header_data(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_name.lower()] = self.header_value
        self.header_name, self.header_value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            self.buffer = bytearray()
            return
        if len(self.upload.files) >= self.max_files or self.name in self.upload.files:
            raise UploadError(422, f"too many files in the form (at most {self.max_files}, "
                                   "one per field)")
        filename = filename.decode("utf-8", "replace")
        handle, path = tempfile.mkstemp(prefix="upload-", suffix=_suffix(filename), dir=self.folder)
        self.file = os.fdopen(handle, "wb")
        self.current = UploadedFile(self.name, os.path.basename(filename.replace("\\", "/")),
                                    Path(path))
        self.upload.files[self.name] = self.current

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.file is not None:
            self.file.write(data[start:end])
            self.current.size += end - start
        elif self.buffer is not None:
            self.buffer += data[start:end]
            if len(self.buffer) > self.max_field_bytes:
                raise UploadError(413, f"form field {self.name!r} is over "
                                       f"{megabytes(self.max_field_bytes)}")

    def part_end(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        elif self.buffer is not None:
            text = self.buffer.decode("utf-8", "replace")
            self.upload.fields.setdefault(self.name, []).append(text)
            self.buffer = None

    def abort(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


async def read_upload(request, folder: str | os.PathLike, limit: int,
                      max_field_bytes: int = 1 << 20, max_files: int = 2) -> Upload:
    """The request's form, its files written under `folder`. Raises `UploadError`: 413 when
    the body is (or declares itself) over `limit` bytes, 415 when it is not a form, 400 when
    the form is malformed. Whatever it raises, no file of this request is left."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise UploadError(415, "send the video as multipart/form-data (a form with the file "
                               "in the field 'video')")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadError(413, f"upload of {megabytes(int(declared))} is over the limit of "
                               f"{megabytes(limit)} (froster serve --max-upload-mb)")
    upload = Upload()
    parts = _Parts(upload, Path(folder), max_field_bytes, max_files)
    try:
        parser = MultipartParser(options[b"boundary"], parts.callbacks())
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise UploadError(413, f"upload is over the limit of {megabytes(limit)} "
                                       "(froster serve --max-upload-mb)")
            parser.write(chunk)
        parser.finalize()
        if parts.file is not None:
            raise UploadError(400, "the form ended in the middle of a file (upload cut off)")
    except UploadError:
        parts.abort()
        upload.close()
        raise
    except Exception as err:  # the parser's and the connection's errors: a bad form
        parts.abort()
        upload.close()
        raise UploadError(400, f"malformed form: {err}") from None
    return upload
