"""`froster serve`: the web app and HTTP API over one loaded model.

Exit status: 0 stopped (Ctrl-C or SIGTERM); 2 nothing could be served (bad arguments,
model, weights, library or run folder, the serve extra not installed, the port taken).
"""

from __future__ import annotations

import argparse
import ipaddress
import os

from ..cli_options import (
    add_parser,
    load_recognizer,
    model_options,
    text_options,
    throughput_options,
    view_options,
)
from ..errors import FrosterError

DESCRIPTION = """\
Serve a model to a browser and to programs: one page (Try: classify a video, its timeline
and attention maps; Search: a folder of videos by text; Inspect: an evaluation's per-class
accuracy, confusions and misclassified videos) and JSON endpoints (/docs lists them).
A video is read exactly as `froster predict` reads it and gets the same probabilities.

One model worker runs every forward pass: the clips of concurrent requests are batched
(up to --batch-size videos, or --max-wait-ms after the first), videos are decoded by
--workers processes beside it, and the text-embedding cache is shared.

Access: 127.0.0.1 by default (this machine only). Another --host needs --token (clients
send 'Authorization: Bearer TOKEN'; the printed URL carries it for a browser) or an
explicit --no-auth. Needs the serve extra: pip install 'froster[serve]'."""

EPILOG = """\
examples:
  froster serve --checkpoint runs/k400/average
  froster serve --model ViT-B-16 --pretrained openai --library ~/videos --run runs/k400/eval
  froster serve --checkpoint CKPT --host 0.0.0.0 --token "$(openssl rand -hex 16)\""""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def register(subparsers) -> None:
    p = add_parser(subparsers, "serve", help="a web app and HTTP API to try a model on videos",
                   description=DESCRIPTION, epilog=EPILOG)
    model_options(p)
    views = p.add_argument_group("views and throughput (as froster predict)")
    view_options(views)
    throughput_options(views, "videos per forward pass, from concurrent requests together")
    text_options(p)
    server = p.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    server.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    server.add_argument("--token", default=os.environ.get("FROSTER_SERVE_TOKEN"),
                        help="bearer token every request must carry (default: "
                             "$FROSTER_SERVE_TOKEN); required for a --host other than loopback")
    server.add_argument("--no-auth", action="store_true",
                        help="serve a non-loopback --host without a token (anyone who reaches "
                             "the port can use the model and read --library and --run videos)")
    server.add_argument("--max-wait-ms", type=float, default=5.0,
                        help="how long a forward pass waits for more requests to batch (default 5)")
    server.add_argument("--queue-size", type=int, default=64,
                        help="requests in progress at once; more get 503 (default 64)")
    server.add_argument("--max-upload-mb", type=float, default=500,
                        help="largest upload in MB (default 500); larger gets 413")
    server.add_argument("--max-labels", type=int, default=1000,
                        help="most labels a request may give (default 1000)")
    server.add_argument("--upload-dir", metavar="DIR",
                        help="where uploads are kept while a request runs (default: a fresh "
                             "temporary folder, removed at exit)")
    server.add_argument("--access-log", action="store_true", help="log every request")
    content = p.add_argument_group("content")
    content.add_argument("--library", metavar="DIR",
                         help="a folder of videos to search by text (embedded once, cached in "
                              "DIR/.froster_index.safetensors as froster search does)")
    content.add_argument("--index", metavar="FILE",
                         help="the library's index file (default: inside --library)")
    content.add_argument("--run", metavar="RUN_DIR", dest="run_dir",
                         help="a froster eval or benchmark output folder to inspect")
    p.set_defaults(run=run_serve)


def check_access(host: str, token: str | None, no_auth: bool) -> None:
    if token is not None and not token.strip():
        raise FrosterError("--token is empty")
    if token and no_auth:
        raise FrosterError("give --token or --no-auth, not both")
    if not _is_loopback(host) and not token and not no_auth:
        raise FrosterError(f"--host {host} lets other machines in: give --token TOKEN (clients "
                         "send it as a bearer token), or --no-auth to serve without one")


def run_serve(args) -> int:
    check_access(args.host, args.token, args.no_auth)
    for name in ("batch_size", "queue_size", "max_labels"):
        if getattr(args, name) < 1:
            raise FrosterError(f"--{name.replace('_', '-')} must be at least 1")
    if args.max_upload_mb <= 0 or args.max_wait_ms < 0 or (args.workers or 0) < 0:
        raise FrosterError("--max-upload-mb must be positive, --max-wait-ms and --workers not negative")
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise FrosterError(f"froster serve needs the serve extra ({err.name} is missing): "
                         "pip install 'froster[serve]'") from None
    from .server import serve

    return serve(load_recognizer(args), args)

