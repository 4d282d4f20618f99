"""Starting a real `froster serve` process for the serve tests (not a test module)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]


def start_server(args, tmp_path, timeout=120):
    """`froster serve ... --port 0` as a process; (process, base URL)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               FROSTER_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "froster.cli", "serve", "--port", "0", *args],
                               stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("froster serve: http://"):
            return process, line.split()[2].rstrip("/")
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"the server did not start: {(tmp_path / 'server.log').read_text()[-3000:]}")


def stop(process) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def raw_request(base, head: bytes, body: bytes = b"", keep_open=False):
    """Send bytes as they are (no client-side normalisation of '../'); the response text."""
    parts = urlsplit(base)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    sock.sendall(head + body)
    if keep_open:
        return sock
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
        if b"\r\n\r\n" in data and len(data) > data.index(b"\r\n\r\n") + 4 and not keep_open:
            header = data[:data.index(b"\r\n\r\n")].lower()
            if b"content-length:" in header:
                length = int(header.split(b"content-length:")[1].split(b"\r\n")[0])
                if len(data) >= data.index(b"\r\n\r\n") + 4 + length:
                    break
    sock.close()
    return data.decode("latin-1")
