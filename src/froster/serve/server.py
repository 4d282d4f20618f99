"""Putting a served model together (`open_app`) and running it under uvicorn (`serve`)."""

from __future__ import annotations

import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import FrosterError, MissingFileError
from .app import LOOPBACK_HOSTS, AppSettings, create_app
from .decoder import Decoder
from .service import Service
from .worker import ModelWorker

__all__ = ["Served", "open_app", "serve"]


@dataclass
class Served:
    app: object
    service: Service
    library: object | None
    run: object | None
    upload_dir: Path
    _own_dir: bool

    def close(self) -> None:
        """Stop the worker and the decoders; remove the upload folder if it was ours."""
        self.service.worker.close()
        self.service.decoder.close()
        if self._own_dir:
            shutil.rmtree(self.upload_dir, ignore_errors=True)


def open_app(recognizer, *, upload_dir=None, workers: int | None = 0, batch_size: int = 4,
             max_wait_ms: float = 5.0, queue_size: int = 64, max_upload_mb: float = 500,
             max_labels: int = 1000, token: str | None = None,
             allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS, library=None, index=None,
             run=None, progress: bool | None = False, extra: dict | None = None) -> Served:
    """The app over `recognizer` with its worker and decoders started (and the library
    indexed, the run folder read). Call `close()` when done."""
    from .library import Library
    from .runs import RunFolder

    runs = RunFolder(run) if run else None
    own = upload_dir is None
    folder = Path(tempfile.mkdtemp(prefix="froster-serve-")) if own else Path(upload_dir)
    if not own and not folder.is_dir():
        raise MissingFileError(f"--upload-dir {folder}: not a folder")
    workers = recognizer.num_workers if workers is None else workers
    worker = ModelWorker(recognizer, batch_clips=batch_size * recognizer.view.num_views,
                         max_wait=max_wait_ms / 1000, queue_size=queue_size)
    decoder = None
    try:
        decoder = Decoder(recognizer, workers)
        shelf = None
        if library:
            shelf = Library(library, recognizer, index)
            worker.call(shelf.update, progress).result()
        decoder.warm_up()
        service = Service(recognizer, worker, decoder, max_labels)
        settings = AppSettings(upload_dir=folder, max_upload_bytes=int(max_upload_mb * 1e6),
                               max_labels=max_labels, token=token, allowed_hosts=allowed_hosts,
                               extra=extra or {})
        app = create_app(service, settings, shelf, runs)
    except BaseException:
        worker.close()
        if decoder is not None:
            decoder.close()
        if own:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return Served(app, service, shelf, runs, folder, own)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as err:
        sock.close()
        raise FrosterError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    sock.listen(2048)
    return sock


def serve(recognizer, args) -> int:
    """Run the app for `froster serve`'s `args` until Ctrl-C or SIGTERM."""
    from urllib.parse import quote

    import uvicorn

    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    # Without a token only loopback names are accepted in the Host header, so that a web
    # page cannot reach this server through a name of its own (DNS rebinding).
    allowed = None if (args.token or args.no_auth) else tuple({*LOOPBACK_HOSTS, args.host})
    try:
        served = open_app(recognizer, upload_dir=args.upload_dir, workers=args.workers,
                          batch_size=args.batch_size, max_wait_ms=args.max_wait_ms,
                          queue_size=args.queue_size, max_upload_mb=args.max_upload_mb,
                          max_labels=args.max_labels, token=args.token, allowed_hosts=allowed,
                          library=args.library, index=args.index, run=args.run_dir, progress=None,
                          extra={"checkpoint": args.checkpoint, "model": args.model})
    except BaseException:
        sock.close()
        raise
    host = f"[{args.host.strip('[]')}]" if ":" in args.host else args.host
    base = f"http://{host}:{port}"
    if served.library is not None:
        print(f"froster serve: library {args.library}: {served.library.report.report()}",
              file=sys.stderr)
    if served.run is not None:
        print(f"froster serve: run {args.run_dir}: {len(served.run.evaluations)} evaluation(s)",
              file=sys.stderr)
    url = f"{base}/" + (f"?token={quote(args.token)}" if args.token else "")
    print(f"froster serve: {url}  (API: {base}/docs; Ctrl-C to stop)", flush=True)
    config = uvicorn.Config(served.app, log_level="info" if args.access_log else "warning",
                            access_log=args.access_log, timeout_graceful_shutdown=5)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again for the
    # handler it found: ours, so that the worker, the decoders and the folder are cleaned up.
    handlers = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        served.close()
        sock.close()
    print("froster serve: stopped", file=sys.stderr)
    return 0


class _Stopped(Exception):
    pass


def _stopped(signum, frame):
    raise _Stopped
