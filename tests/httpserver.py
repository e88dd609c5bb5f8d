"""A real HTTP log server for tests: serves a directory tree on 127.0.0.1.

    with serve_directory(CORPUS) as server:
        url = server.url("os-loganalyze/syslog.txt")
        server.behave("/os-loganalyze/syslog.txt", fail_times=2)  # two 500s, then the file
        ...
        assert server.hits["/os-loganalyze/syslog.txt"] == 3

Files are sent with Content-Length and Last-Modified. Like the log servers CI systems use,
a `.gz` file is sent with `Content-Encoding: gzip`, and a missing `name` is answered with
`name.gz` if that exists. Behaviours, set per URL path, make a path misbehave: fail N
times, stall, drip a few bytes a second, hang up mid-body (every time or the first N
times), use chunked transfer or no length at all (the end of the body is the end of the
connection), redirect, or serve a generated body of any size without holding it in
memory.
"""

from __future__ import annotations

import mimetypes
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, unquote, urlsplit

MiB = 1024 * 1024
_PIECE = 64 * 1024


def generated_block(size: int = MiB) -> bytes:
    """The text repeated to make generated bodies: numbered log-like lines."""
    lines = bytearray()
    n = 0
    while len(lines) < size:
        lines += b"2024-01-01 00:00:00.000 INFO generated line %08d\n" % n
        n += 1
    return bytes(lines[:size])


def generated_body(size: int) -> Iterator[bytes]:
    """The bytes a `body_size` behaviour sends, for tests that want to compare them."""
    block = generated_block()
    while size > 0:
        piece = block[: min(size, len(block))]
        size -= len(piece)
        yield piece


@dataclass
class Behaviour:
    fail_times: int = 0  # answer `fail_status` this many times, then normally
    fail_status: int = 500
    status: int | None = None  # always answer this status, with a short text body
    delay: float = 0.0  # seconds to wait before sending the status line
    stall_after: int | None = None  # after this many body bytes, wait `stall` seconds
    stall: float = 0.0
    drop_after: int | None = None  # after this many body bytes, hang up
    drop_times: int | None = None  # hang up so on this many requests only (None: on all)
    drip_after: int | None = None  # after this many body bytes, send `drip` bytes a second
    drip: int = 4
    chunked: bool = False  # no Content-Length: chunked transfer encoding
    no_length: bool = False  # neither Content-Length nor chunked: the body ends at hang-up
    redirect: str | None = None  # answer 302 with this Location (absolute or relative)
    body_size: int | None = None  # send a generated body of this size instead of a file


class LogServer:
    """The running server: its URLs, per-path behaviours and request counts."""

    def __init__(self, root: Path | None, *, gzip_encoding: bool = True) -> None:
        self.root = root.resolve() if root is not None else None
        self.gzip_encoding = gzip_encoding
        self.behaviours: dict[str, Behaviour] = {}
        self.hits: Counter[str] = Counter()  # requests per URL path
        self.connections = 0
        self.lock = threading.Lock()
        self.base_url = ""

    def url(self, path: str) -> str:
        """The URL of `path` (relative to the served root), percent-encoded."""
        return f"{self.base_url}/{quote(path.lstrip('/'))}"

    def behave(self, path: str, **settings: Any) -> Behaviour:
        """Make URL path `path` (e.g. "/big.txt") misbehave as `settings` say."""
        behaviour = Behaviour(**settings)
        self.behaviours["/" + path.lstrip("/")] = behaviour
        return behaviour

    def find(self, path: str) -> tuple[Path, bool] | None:
        """The file for URL path `path`, and whether to send it as Content-Encoding gzip."""
        if self.root is None:
            return None
        candidate = (self.root / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.root):
            return None
        if candidate.is_file():
            return candidate, self.gzip_encoding and candidate.suffix == ".gz"
        compressed = candidate.with_name(candidate.name + ".gz")
        if self.gzip_encoding and compressed.is_file():
            return compressed, True
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: LogServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up early (timeouts, size limits) are what the tests provoke.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked transfer
    timeout = 10  # idle keep-alive connections end on their own
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.app.lock:
            self.server.app.connections += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, *, send_body: bool) -> None:
        app = self.server.app
        path = unquote(urlsplit(self.path).path)
        with app.lock:
            app.hits[path] += 1
            behaviour = app.behaviours.get(path, Behaviour())
            failing = behaviour.fail_times > 0
            if failing:
                behaviour.fail_times -= 1
            elif behaviour.drop_after is not None and behaviour.drop_times is not None:
                if behaviour.drop_times > 0:
                    behaviour.drop_times -= 1
                else:  # this request is sent whole
                    behaviour = replace(behaviour, drop_after=None)
        if behaviour.delay:
            time.sleep(behaviour.delay)
        if failing:
            self._text(behaviour.fail_status, send_body)
        elif behaviour.status is not None:
            self._text(behaviour.status, send_body)
        elif behaviour.redirect is not None:
            self.send_response(302)
            self.send_header("Location", behaviour.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif behaviour.body_size is not None:
            self._send(
                generated_body(behaviour.body_size), behaviour.body_size, {}, behaviour, send_body
            )
        else:
            found = app.find(path)
            if found is None:
                self._text(404, send_body)
                return
            file_path, gzipped = found
            stat = file_path.stat()
            name = file_path.name[:-3] if gzipped else file_path.name
            headers = {
                "Content-Type": mimetypes.guess_type(name)[0] or "text/plain",
                "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
            }
            if gzipped:
                headers["Content-Encoding"] = "gzip"
            with open(file_path, "rb") as file:
                self._send(_pieces(file), stat.st_size, headers, behaviour, send_body)

    def _text(self, status: int, send_body: bool) -> None:
        body = f"{status} {self.responses.get(status, ('',))[0]}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send(
        self,
        pieces: Iterator[bytes],
        size: int,
        headers: dict[str, str],
        behaviour: Behaviour,
        send_body: bool,
    ) -> None:
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        if behaviour.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif behaviour.no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        if not send_body:
            return
        sent = 0
        stalled = False
        for piece in pieces:
            for start in range(0, len(piece), _PIECE):
                data = piece[start : start + _PIECE]
                if behaviour.drop_after is not None and sent + len(data) > behaviour.drop_after:
                    self._write(data[: behaviour.drop_after - sent], behaviour.chunked)
                    self._hang_up()
                    return
                if (
                    not stalled
                    and behaviour.stall_after is not None
                    and sent + len(data) > behaviour.stall_after
                ):
                    self._write(data[: behaviour.stall_after - sent], behaviour.chunked)
                    data = data[behaviour.stall_after - sent :]
                    sent = behaviour.stall_after
                    stalled = True
                    time.sleep(behaviour.stall)
                if behaviour.drip_after is not None and sent + len(data) > behaviour.drip_after:
                    self._write(data[: max(behaviour.drip_after - sent, 0)], behaviour.chunked)
                    self.wfile.flush()
                    self._drip(data[max(behaviour.drip_after - sent, 0) :], behaviour)
                    sent += len(data)
                    continue
                self._write(data, behaviour.chunked)
                sent += len(data)
        if behaviour.chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _drip(self, data: bytes, behaviour: Behaviour) -> None:
        # Every write succeeds and every byte is new, so neither a read timeout nor
        # a dropped connection ends the transfer: only the client's own limits can.
        for start in range(0, len(data), behaviour.drip):
            time.sleep(1.0)
            self._write(data[start : start + behaviour.drip], behaviour.chunked)
            self.wfile.flush()

    def _write(self, data: bytes, chunked: bool) -> None:
        if not data:
            return
        if chunked:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.wfile.write(data)

    def _hang_up(self) -> None:
        self.wfile.flush()
        self.close_connection = True
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _pieces(file: BinaryIO) -> Iterator[bytes]:
    while piece := file.read(MiB):
        yield piece


@contextmanager
def serve_directory(
    root: Path | None, *, gzip_encoding: bool = True, tls: tuple[Path, Path] | None = None
) -> Iterator[LogServer]:
    """Serve `root` (or nothing but behaviours, if None) on 127.0.0.1, on a free port.

    `tls` is (certificate, key) in PEM files, to serve HTTPS instead; see `make_certificate`.
    """
    app = LogServer(root, gzip_encoding=gzip_encoding)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.app = app
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        # Handshakes then happen in the handler threads, so a client that rejects the
        # certificate does not hold up the accepting thread.
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    host, port = server.server_address[:2]
    app.base_url = f"{'https' if tls else 'http'}://{host!s}:{port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), made with the openssl tool."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def free_port() -> int:
    """A port nothing listens on (for connection-refused tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


__all__ = [
    "Behaviour",
    "LogServer",
    "free_port",
    "generated_body",
    "make_certificate",
    "serve_directory",
]
