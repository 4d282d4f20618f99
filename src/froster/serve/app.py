"""The HTTP layer of `froster serve` (FastAPI): routes, forms, errors, access. Everything a
route computes comes from `Service` (the library's calls), `Library` or `RunFolder`.

Errors are JSON ``{"detail": message}``: 413 an upload over the limit, 415 not a form,
422 a file that is not a readable video, missing or too many labels, bad options;
503 the server is full (with Retry-After); 401 a missing or wrong token; 404 no such
file. Every request's uploaded files are removed when it ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from ..version import __version__
from ..data.annotations import AnnotationError, read_class_names
from ..data.decode import VideoDecodeError
from .service import (
    LabelError,
    Service,
    check_labels,
    explanation_picture,
    parse_labels,
)
from .uploads import Upload, UploadError, read_upload
from .worker import QueueFull

__all__ = ["LOOPBACK_HOSTS", "TOKEN_COOKIE", "AppSettings", "create_app"]

STATIC = Path(__file__).parent / "static"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
TOKEN_COOKIE = "froster_token"
#: The first bytes of text formats FFmpeg would follow to other files or URLs.
_PLAYLISTS = (b"#EXTM3U", b"#EXT-X", b"ffconcat", b"<?xml", b"<MPD", b"[playlist]")


@dataclass
class AppSettings:
    upload_dir: Path
    max_upload_bytes: int = 500_000_000
    max_labels: int = 1000
    token: str | None = None
    #: Host headers accepted (DNS rebinding: a web page must not reach a local server
    #: through a name of its own); None: any (with a token, or --no-auth).
    allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS
    extra: dict = field(default_factory=dict)  # shown by /api/model (how the model was loaded)


def _form_body(fields: dict, required=("video",)) -> dict:
    """OpenAPI description of a multipart form (the routes read the stream themselves)."""
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": list(required), "properties": fields}}}}}


_VIDEO = {"type": "string", "format": "binary", "description": "the video file"}
_LABELS = {"type": "array", "items": {"type": "string"},
           "description": "labels: one per field, or one field with one label per line or "
                          "comma-separated; 'Name: description' allowed"}
_LABEL_FILE = {"type": "string", "format": "binary",
               "description": "instead of labels: a class file (JSON, CSV or text) as "
                              "froster predict --label-file reads"}


class _Guard:
    """ASGI middleware: the Host header check, then the bearer token (or its cookie)."""

    def __init__(self, app, settings: AppSettings):
        self.app, self.settings = app, settings

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        allowed = self.settings.allowed_hosts
        host = _host(request.headers.get("host") or "")
        if allowed is not None and host not in allowed:
            return await _error(400, f"Host {host!r} is not served here (only {', '.join(allowed)}"
                                     "; froster serve --host)")(scope, receive, send)
        token = self.settings.token
        if token is not None:
            given = request.query_params.get("token")
            if request.url.path == "/" and given is not None and _same(given, token):
                response = RedirectResponse("/", status_code=303)
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
                return await response(scope, receive, send)
            header = request.headers.get("authorization", "")
            bearer = header[7:] if header.lower().startswith("bearer ") else None
            cookie = request.cookies.get(TOKEN_COOKIE)
            if not any(v is not None and _same(v, token) for v in (bearer, cookie)):
                return await _error(401, "a token is needed: send 'Authorization: Bearer TOKEN', "
                                         "or open the URL froster serve printed",
                                    {"WWW-Authenticate": "Bearer"})(scope, receive, send)
        return await self.app(scope, receive, send)


def _host(header: str) -> str:
    """The name in a Host header, without the port ("[::1]:8000" -> "[::1]")."""
    if header.startswith("["):
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def create_app(service: Service, settings: AppSettings, library=None, run=None) -> FastAPI:
    """The app over one `Service`; `library` a `Library` (search), `run` a `RunFolder`."""
    app = FastAPI(title="froster serve", version=__version__, docs_url=None, redoc_url=None,
                  description="Open-vocabulary video recognition with a FROSTER model: classify, "
                              "timeline, attention maps, search and evaluation reports.")
    app.add_middleware(_Guard, settings=settings)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    worker, recognizer = service.worker, service.recognizer

    @app.exception_handler(UploadError)
    async def _upload_error(request, err: UploadError):
        return _error(err.status, err.message, err.headers)

    @app.exception_handler(QueueFull)
    async def _busy(request, err: QueueFull):
        return _error(503, str(err), {"Retry-After": str(err.retry_after)})

    @app.exception_handler(VideoDecodeError)
    async def _bad_video(request, err: VideoDecodeError):
        return _error(422, str(err))

    @app.exception_handler(AnnotationError)
    async def _bad_labels(request, err: AnnotationError):
        return _error(422, str(err))

    @app.exception_handler(ValueError)  # LabelError and the library's checks of options
    async def _bad_value(request, err: ValueError):
        return _error(422, str(err))

    # -- forms --------------------------------------------------------------------------
    async def form(request: Request) -> Upload:
        return await read_upload(request, settings.upload_dir, settings.max_upload_bytes)

    def labels_of(upload: Upload) -> list[str]:
        class_file = upload.files.get("label_file")
        if class_file is not None:
            try:
                names = read_class_names(class_file.path)
            except AnnotationError as err:  # named by the client's file name, not ours
                raise AnnotationError(str(err).replace(str(class_file.path),
                                                       class_file.filename or "label_file")) from None
            return check_labels(names, settings.max_labels)
        return parse_labels(upload.texts("labels"), settings.max_labels)

    def video_of(upload: Upload):
        video = upload.files.get("video")
        if video is None:
            raise UploadError(422, "no video in the form: send the file in the field 'video'")
        name = video.filename or "video"
        if video.size == 0:
            raise UploadError(422, f"{name}: empty file (0 bytes)")
        with open(video.path, "rb") as f:
            head = f.read(64).lstrip()
        if head.startswith(_PLAYLISTS):
            raise UploadError(422, f"{name}: a playlist or text file, not a video (it would "
                                   "make the decoder open other files)")
        return video, name

    def number(upload: Upload, key: str, default, kind=float, low=None, high=None):
        text = upload.text(key)
        if text is None or text.strip() == "":
            return default
        try:
            value = kind(text)
        except ValueError:
            raise UploadError(422, f"{key}: {text!r} is not a {kind.__name__}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise UploadError(422, f"{key}: {value} is outside [{low}, {high}]")
        return value

    def flag(upload: Upload, key: str) -> bool:
        return (upload.text(key) or "").strip().lower() in ("1", "true", "yes", "on")

    # -- pages --------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return FileResponse(STATIC / "docs.html", headers={"Cache-Control": "no-cache"})

    # -- information ----------------------------------------------------------------------
    @app.get("/api/health", tags=["info"], summary="Is the server up, and how busy")
    async def health():
        return {"status": "ok", "in_progress": worker.in_progress, "queue_size": worker.queue_size,
                "batches": worker.batches, "batched_clips": worker.batched_clips,
                "largest_batch": worker.largest_batch}

    @app.get("/api/model", tags=["info"], summary="The model and how it sees a video")
    async def model():
        return {"froster": __version__, "identity": recognizer.identity,
                "view_settings": recognizer.view_settings, "run_settings": recognizer.run_settings,
                "templates": len(recognizer.templates), "device": str(recognizer.device),
                "batch_clips": worker.batch_clips, "max_wait_ms": worker.max_wait * 1000,
                "queue_size": worker.queue_size, "max_upload_bytes": settings.max_upload_bytes,
                "max_labels": settings.max_labels, "library": library is not None,
                "run": run is not None, **settings.extra}

    # -- labels, classify ------------------------------------------------------------------
    @app.post("/api/labels", tags=["try"], summary="Read a class file into labels",
              openapi_extra=_form_body({"label_file": _LABEL_FILE}, ("label_file",)))
    async def labels(request: Request):
        upload = await form(request)
        try:
            if "label_file" not in upload.files:
                raise UploadError(422, "no class file in the form (field 'label_file')")
            return {"labels": labels_of(upload)}
        finally:
            upload.close()

    @app.post("/api/classify", tags=["try"], summary="Rank labels for a video",
              description="The probabilities `froster predict` gives: softmax over the labels "
                          "of the view-summed logits (3 views x 1 centre crop by default).",
              openapi_extra=_form_body({
                  "video": _VIDEO, "labels": _LABELS, "label_file": _LABEL_FILE,
                  "top_k": {"type": "integer", "default": 5, "description": "0: all labels"},
                  "frames": {"type": "boolean", "default": False,
                             "description": "also a JPEG (data URL) of the frames the model saw"}}))
    async def classify(request: Request):
        with worker.admit():
            upload = await form(request)
            try:
                video, name = video_of(upload)
                chosen = labels_of(upload)
                top_k = number(upload, "top_k", 5, int, 0)
                return await service.classify(video.path, name, chosen, top_k,
                                              frames=flag(upload, "frames"))
            finally:
                upload.close()

    # -- explain ------------------------------------------------------------------------
    @app.post("/api/explain", tags=["try"], summary="Attention maps of a video for a label",
              description="The picture `froster explain` draws (PNG grid, or GIF), of the middle "
                          "test view. Headers X-Label, X-Probability, X-View say what it shows.",
              openapi_extra=_form_body({
                  "video": _VIDEO, "labels": _LABELS, "label_file": _LABEL_FILE,
                  "label": {"type": "string", "description": "default: the top label"},
                  "method": {"type": "string", "enum": ["gradient", "rollout"]},
                  "head_fusion": {"type": "string", "enum": ["mean", "max"]},
                  "format": {"type": "string", "enum": ["png", "gif"]}}),
              responses={200: {"content": {"image/png": {}, "image/gif": {}}}})
    async def explain(request: Request):
        with worker.admit():
            upload = await form(request)
            try:
                video, name = video_of(upload)
                chosen = labels_of(upload)
                fmt = (upload.text("format") or "png").lower()
                if fmt not in ("png", "gif"):
                    raise UploadError(422, f"format: {fmt!r}; choose png or gif")
                result = await service.explain(
                    video.path, name, chosen, upload.text("label") or None,
                    upload.text("method") or "gradient", upload.text("head_fusion") or "mean")
                picture = await asyncio.to_thread(explanation_picture, result, name, fmt,
                                                  settings.upload_dir)
            finally:
                upload.close()
        return Response(picture, media_type=f"image/{fmt}", headers={
            "X-Label": _header(result.label), "X-Probability": f"{result.probability:.6f}",
            "X-View": f"{result.view + 1} of {result.views}", "X-Method": result.method})

    # -- timeline -------------------------------------------------------------------------
    @app.post("/api/timeline", tags=["try"], summary="What happens when, a window at a time",
              description="The records `froster timeline -o x.jsonl` writes, streamed as they "
                          "are known: NDJSON (default) or server-sent events (format=sse, or "
                          "Accept: text/event-stream). Each window also has every label's "
                          "logit and smoothed score.",
              openapi_extra=_form_body({
                  "video": _VIDEO, "labels": _LABELS, "label_file": _LABEL_FILE,
                  "stride": {"type": "number", "default": 1.0},
                  "window": {"type": "number", "description": "seconds (default: the model's)"},
                  "threshold": {"type": "number", "default": 0.0},
                  "smooth": {"type": "integer", "default": 1},
                  "top_k": {"type": "integer", "default": 0},
                  "format": {"type": "string", "enum": ["ndjson", "sse"]}}),
              responses={200: {"content": {"application/x-ndjson": {}, "text/event-stream": {}}}})
    async def timeline(request: Request):
        release = worker.acquire()
        upload = None
        try:
            upload = await form(request)
            video, name = video_of(upload)
            chosen = labels_of(upload)
            options = dict(stride=number(upload, "stride", 1.0, float, 1e-3),
                           window=number(upload, "window", None, float, 1e-3),
                           threshold=number(upload, "threshold", 0.0, float, 0.0, 1.0),
                           smooth=number(upload, "smooth", 1, int, 1),
                           top_k=number(upload, "top_k", 0, int, 0))
            sse = (upload.text("format") or "").lower() == "sse" or \
                "text/event-stream" in request.headers.get("accept", "")
            records = service.timeline(video.path, name, chosen, **options)
            first = await run_in_threadpool(next, records)  # a bad file fails here: a 422
        except BaseException:
            if upload is not None:
                upload.close()
            release()
            raise

        def line(record: dict) -> str:
            text = json.dumps(record, ensure_ascii=False)
            return f"event: {record['type']}\ndata: {text}\n\n" if sse else text + "\n"

        async def body():
            try:
                yield line(first)
                while (record := await run_in_threadpool(next, records, None)) is not None:
                    yield line(record)
            except (VideoDecodeError, ValueError) as err:
                yield line({"type": "error", "error": str(err)})
            finally:
                with anyio.CancelScope(shield=True):
                    await run_in_threadpool(records.close)
                    upload.close()
                    release()

        return StreamingResponse(body(), media_type="text/event-stream" if sse else
                                 "application/x-ndjson", headers={"Cache-Control": "no-cache"})

    @app.post("/api/timeline/rescore", tags=["try"],
              summary="Labels and segments again for another threshold or smoothing",
              description="From the windows' logits a timeline gave (no model); body: "
                          '{"labels": [...], "windows": [{"start", "end", "logits"}], '
                          '"threshold", "smooth", "end_time"}.')
    async def rescore(request: Request):
        raw = bytearray()
        async for chunk in request.stream():  # bounded like an upload
            raw += chunk
            if len(raw) > settings.max_upload_bytes:
                raise UploadError(413, "request body is over the upload limit")
        try:
            body = json.loads(raw)
            labels = parse_labels(list(body["labels"]), settings.max_labels)
            windows = list(body["windows"])
            threshold, smooth = float(body.get("threshold", 0.0)), int(body.get("smooth", 1))
            end_time = body.get("end_time")
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, LabelError):
                raise
            raise UploadError(422, f"expected JSON {{labels, windows, threshold, smooth}}: "
                                   f"{err}") from None
        return await run_in_threadpool(service.rescore, labels, windows, threshold, smooth,
                                       None if end_time is None else float(end_time))

    # -- search ---------------------------------------------------------------------------
    @app.get("/api/search", tags=["search"], summary="Rank the library's videos by a text")
    async def search(q: str, top_k: int = 24):
        if library is None:
            return _error(404, "no library: start froster serve with --library DIR")
        if not q.strip():
            return _error(422, "empty query")
        with worker.admit():
            ranking = await asyncio.wrap_future(worker.call(library.search, q, top_k or None))
        return {"query": q, "results": [
            {"rank": i, "video": name, "score": round(score, 6),
             "url": f"/library/{_quote(name)}", "thumbnail": f"/api/thumbnail/{_quote(name)}"}
            for i, (name, score) in enumerate(ranking, start=1)],
            "index": {"videos": len(library.index.videos),
                      "unreadable": len(library.index.errors)}}

    @app.get("/api/thumbnail/{name:path}", tags=["search"], summary="A library video's thumbnail")
    async def thumbnail(name: str):
        if library is None or library.path(name) is None:
            return _error(404, f"{name}: not a video of the library")
        try:
            data = await asyncio.to_thread(library.thumbnail, name)
        except VideoDecodeError as err:
            return _error(422, str(err))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    @app.get("/library/{name:path}", tags=["search"], summary="A library video (seekable)")
    async def library_file(name: str):
        path = library.path(name) if library is not None else None
        if path is None:
            return _error(404, f"{name}: not a video of the library")
        return FileResponse(path)

    # -- inspect --------------------------------------------------------------------------
    @app.get("/api/run", tags=["inspect"], summary="The evaluations of --run")
    async def run_list():
        if run is None:
            return _error(404, "no run: start froster serve with --run RUN_DIR")
        return {"folder": str(run.folder), "evaluations": await run_in_threadpool(run.summaries)}

    @app.get("/api/run/evaluation", tags=["inspect"],
             summary="Per-class accuracy, confused pairs, failed and misclassified videos")
    async def run_detail(name: str):
        if run is None or name not in run.evaluations:
            return _error(404, f"{name}: no such evaluation")
        return await run_in_threadpool(run.detail, name)

    @app.get("/api/run/video", tags=["inspect"], summary="A video of an evaluation (seekable)")
    async def run_video(name: str, index: int):
        path = run.video(name, index) if run is not None and name in run.evaluations else None
        if path is None:
            return _error(404, f"{name} #{index}: no such video")
        return FileResponse(path)

    return app


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name)


def _header(text: str) -> str:
    """A header value: non-Latin-1 characters percent-encoded."""
    from urllib.parse import quote

    try:
        text.encode("latin-1")
        return text
    except UnicodeEncodeError:
        return quote(text)
