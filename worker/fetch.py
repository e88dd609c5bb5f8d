"""Open a log file by URL and stream its raw bytes, within the configured limits.

Fetching stops at bytes: a gzip file stays gzip here, because worker/decode.py detects
compression by magic bytes and so handles both `Content-Encoding: gzip` responses and
plain `.gz` files the same way.

Every failure is a FetchError whose one-line message names the URL and the reason, as it
ends up in the Gearman job's answer. Besides per-read timeouts, a whole file has a deadline
(fetch.max_seconds) and a minimum rate (fetch.min_bytes_per_second), because a server that
drips a few bytes a second never trips a read timeout; and an `Interrupt` lets another
thread end a transfer at once (the worker stopping), which raises `Interrupted`.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, BinaryIO, NoReturn
from urllib.parse import unquote, urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import parse_url

from worker.config import FetchConfig
from worker.errors import BodyBroken, FetchError, Interrupted, LogIndexerError

MAX_REDIRECTS = 5
USER_AGENT = "ci-log-indexer"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Refused early so they reach neither a request line nor a one-line error message.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class Source:
    """An open log file: what is known about it, and a one-pass iterator over its bytes.

    `chunks` yields the raw bytes as received (still compressed if the file is) and raises
    FetchError if the transfer fails or outgrows `max_compressed_bytes`; bytes already
    yielded stay yielded. `received` counts the bytes yielded so far; `ended` is set once
    the body has ended, and `length_known` says whether that end was checked against a
    length given by the server (Content-Length) or the file system: a body without one
    that is cut short ends like a complete one.
    """

    def __init__(
        self,
        url: str,
        *,
        read: Callable[[], bytes],
        limit: int,
        first: bytes | None = None,
        final_url: str | None = None,
        last_modified: datetime | None = None,
        size: int | None = None,
        encoded: bool = False,
    ) -> None:
        self.url = url
        self.final_url = final_url or url  # after redirects
        self.last_modified = last_modified
        self.size = size  # Content-Length or file size, when known
        self.length_known = size is not None
        # Sent with a Content-Encoding the file's name does not have: compressed on the
        # fly, so the bytes received are not the bytes stored.
        self.encoded = encoded
        self.received = 0
        self.ended = False
        self._closed = False
        self.chunks: Iterator[bytes] = self._iterate(read, limit, first)

    def __repr__(self) -> str:
        return f"Source({self.url!r}, size={self.size}, received={self.received})"

    def _iterate(
        self, read: Callable[[], bytes], limit: int, first: bytes | None
    ) -> Iterator[bytes]:
        chunk = first
        while True:
            if chunk is None:
                if self._closed:
                    # Reading a released response could look like a clean end of file and
                    # silently truncate the log, so this is an error.
                    raise FetchError(f"{self.url}: read after the source was closed")
                try:
                    chunk = read()
                except (HTTPError, OSError) as exc:
                    # No retry here: lines from the bytes already yielded have gone
                    # downstream (perhaps indexed), so only the caller can decide whether
                    # to start the file again; a connection broken off (reset, closed
                    # before the announced end) is worth it, a timeout is not.
                    error = BodyBroken if isinstance(exc, ProtocolError) else FetchError
                    raise error(
                        f"{self.url}: {_describe(exc)} after {self.received} bytes"
                    ) from exc
            if not chunk:
                self.ended = True
                return
            if self.received + len(chunk) > limit:
                raise FetchError(
                    f"{self.url}: larger than max_compressed_bytes ({limit} bytes);"
                    f" stopped after {self.received} bytes"
                )
            self.received += len(chunk)
            yield chunk
            chunk = None

    def _close(self) -> None:
        self._closed = True


class Interrupt:
    """Ends the transfers it watches from another thread, within moments: a worker asked to
    stop must not wait for a slow log server. The reader then raises `Interrupted`.

    Once interrupted it stays so: every later transfer given it is refused at once.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self._woken = threading.Event()
        self._lock = threading.Lock()
        # The connection each thread is using for its fetch: one at a time per thread.
        self._watched: dict[int, HTTPConnection] = {}

    def interrupt(self, reason: str) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
            watched = list(self._watched.values())
        self._woken.set()
        for connection in watched:
            _shut_down(connection)

    def check(self, url: str) -> None:
        if self.reason is not None:
            raise Interrupted(f"{url}: {self.reason}")

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less if interrupted meanwhile."""
        self._woken.wait(seconds)

    def shut(self, thread: int) -> None:
        """Shut the connection `thread` is using, without interrupting anything else: the
        deadline of that thread's file has passed."""
        with self._lock:
            connection = self._watched.get(thread)
        if connection is not None:
            _shut_down(connection)

    def watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._watched[threading.get_ident()] = connection
            interrupted = self.reason is not None
        if interrupted:  # interrupted just before: the loop above did not see this one
            _shut_down(connection)

    def forget(self) -> None:
        # Before the connection goes back to the pool, where another request may use it.
        with self._lock:
            self._watched.pop(threading.get_ident(), None)


def _shut_down(connection: HTTPConnection) -> None:
    """Wake a read blocked on `connection`'s socket: it then sees the end of the stream.
    A connection still connecting has no socket yet: connect_timeout bounds that."""
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        # The plain socket's shutdown even for TLS: SSLSocket.shutdown would also drop its
        # TLS state under the reading thread's feet.
        with suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


@dataclass(slots=True)
class _Pace:
    """The deadline and the minimum rate of one file, checked as its bytes arrive."""

    url: str
    config: FetchConfig
    started: float = field(default_factory=time.monotonic)
    received: int = 0
    window_start: float = 0.0
    window_bytes: int = 0  # `received` when the current window started
    # When the last chunk was handed over: the time until the next read is the
    # consumer's (a sink holding the pipeline up), which the rate must not count.
    handed: float | None = None

    def __post_init__(self) -> None:
        self.window_start = self.started

    def check(self) -> None:
        now = time.monotonic()
        limit = self.config.max_seconds
        if now - self.started > limit:
            raise FetchError(
                f"{self.url}: the log server did not send the file within fetch.max_seconds"
                f" ({limit:g} s); stopped after {self.received} bytes"
            )
        window = now - self.window_start
        minimum = self.config.min_bytes_per_second
        if not minimum or window < self.config.rate_window:
            return
        rate = (self.received - self.window_bytes) / window
        if rate < minimum:
            raise FetchError(
                f"{self.url}: the log server sent {rate:.0f} bytes/s over {window:.0f} s,"
                f" below fetch.min_bytes_per_second ({minimum:g}); stopped after"
                f" {self.received} bytes"
            )
        self.window_start, self.window_bytes = now, self.received

    def reader(
        self, read_some: Callable[[int], bytes], chunk_bytes: int, interrupt: Interrupt
    ) -> Callable[[], bytes]:
        """A reader of chunks of `chunk_bytes` (fewer at the end) made of what each
        `read_some(n)` returns, so that pace and interrupt are checked as bytes come in."""

        def read() -> bytes:
            if self.handed is not None:
                self.window_start += time.monotonic() - self.handed
            chunk = bytearray()
            while len(chunk) < chunk_bytes:
                try:
                    piece = read_some(chunk_bytes - len(chunk))
                except (HTTPError, OSError):
                    # The interrupt's or the deadline's doing, not the server's.
                    interrupt.check(self.url)
                    self.check()
                    raise
                interrupt.check(self.url)
                if not piece:
                    self.check()  # a socket shut at the deadline ends like the body
                    break
                chunk += piece
                self.received += len(piece)
                self.check()
            self.handed = time.monotonic()
            return bytes(chunk)

        return read


def verify_length(source: Source, expected: int | None, decompressed: int) -> bool:
    """Whether a body read to its end is known to be whole: by its announced length,
    else by the size the listing gave (`expected`), which is either the bytes stored
    or, for a file compressed on the fly, the bytes after decompression. Raises
    FetchError for a body shorter than the listing says."""
    if source.length_known:
        return True
    if expected is None:
        return False
    got = decompressed if source.encoded else source.received
    if got != expected:
        what = "decompressed" if source.encoded else "received"
        raise FetchError(
            f"{source.url}: the body ended after {got} bytes {what}; the listing gives"
            f" {expected} bytes (no Content-Length: the connection ended early)"
        )
    return True


def check_allowed(url: str, config: FetchConfig) -> None:
    """Raise FetchError unless `url` may be fetched under `config.allow`."""
    _resolve(url, config)


@contextmanager
def open_source(
    url: str, config: FetchConfig, interrupt: Interrupt | None = None
) -> Iterator[Source]:
    """Open `url` (http, https, or a local path / file:// URL when allowed).

    Everything that can fail before the first byte (refused URL, connection, HTTP status,
    announced size) raises here, after retries; later failures are raised by
    `source.chunks`. fetch.max_seconds counts from here.
    """
    target = _resolve(url, config)
    pace = _Pace(url, config)
    interrupt = interrupt or Interrupt()
    opened = (
        _open_local(url, target, config, pace, interrupt)
        if isinstance(target, Path)
        else _open_http(url, config, pace, interrupt)
    )
    # Pace is judged as bytes arrive; this wakes a fetch that receives none at all (a
    # stall, headers that never come) at its deadline.
    deadline = threading.Timer(config.max_seconds, interrupt.shut, (threading.get_ident(),))
    deadline.daemon = True
    deadline.start()
    try:
        with opened as source:
            yield source
    finally:
        deadline.cancel()


# --- allowlist ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Prefix:
    scheme: str
    host: str
    port: int
    path: str  # percent-decoded

    def covers(self, other: _Prefix) -> bool:
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        # Whole segments only: "/logs" covers "/logs" and "/logs/x" but not "/logs-evil/x".
        base = self.path.rstrip("/")
        return other.path == base or other.path.startswith(base + "/")


def _resolve(url: str, config: FetchConfig) -> str | Path:
    """The URL itself if it may be fetched over HTTP, or the real path of a local file."""
    if not url:
        raise FetchError("empty URL")
    if _CONTROL_CHARS.search(url):
        raise FetchError(f"{url!r}: control characters in URL")
    scheme = _scheme(url)
    if scheme in _DEFAULT_PORTS:
        wanted = _parse_http(url)
        if not any(allowed.covers(wanted) for allowed in _allowed_prefixes(config)):
            raise FetchError(f"{url}: not under an allowed prefix")
        return url
    if scheme not in ("", "file"):
        raise FetchError(f"{url}: unsupported scheme {scheme!r} (only http and https)")
    if not config.allow_local:
        raise FetchError(f"{url}: local files are not allowed (fetch.allow_local is false)")
    # Symlinks and ".." are resolved before comparing, so neither can lead outside.
    real = Path(os.path.realpath(_local_path(url)))
    if not any(real.is_relative_to(allowed) for allowed in _allowed_dirs(config)):
        raise FetchError(f"{url}: not under an allowed prefix (resolves to {real})")
    return real


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        raise FetchError(f"{url}: malformed URL") from None


def _parse_http(url: str) -> _Prefix:
    # urllib3 does the request, so its own parser decides which host is compared: Python's
    # urlsplit disagrees with it on some URLs (e.g. a backslash before "@").
    if "\\" in url:
        raise FetchError(f"{url}: backslash in URL")
    try:
        parsed = parse_url(url)
    except LocationParseError:
        raise FetchError(f"{url}: malformed URL") from None
    scheme = (parsed.scheme or "").lower()
    if not parsed.host or scheme not in _DEFAULT_PORTS:
        raise FetchError(f"{url}: no host name")
    # urllib3 has already removed literal dot segments, so look at the raw path as well;
    # and compare decoded paths, because the server decodes "%2e%2e" and "%2f" too.
    raw_path = unquote(urlsplit(url).path)
    path = unquote(parsed.path or "/")
    if ".." in raw_path.split("/") or ".." in path.split("/"):
        raise FetchError(f"{url}: '..' in path is not allowed")
    return _Prefix(scheme, parsed.host.lower(), parsed.port or _DEFAULT_PORTS[scheme], path)


def _local_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        return url
    if parts.netloc not in ("", "localhost"):
        raise FetchError(f"{url}: file URL on another host")
    return unquote(parts.path)


def _allowed_prefixes(config: FetchConfig) -> Iterator[_Prefix]:
    for entry in config.allow:
        try:
            if _scheme(entry) in _DEFAULT_PORTS:
                yield _parse_http(entry)
        except FetchError:
            continue  # a malformed entry allows nothing


def _allowed_dirs(config: FetchConfig) -> Iterator[Path]:
    for entry in config.allow:
        try:
            if _scheme(entry) in ("", "file"):
                yield Path(os.path.realpath(_local_path(entry)))
        except (FetchError, ValueError):
            continue


# --- local files -------------------------------------------------------------------------


@contextmanager
def _open_local(
    url: str, path: Path, config: FetchConfig, pace: _Pace, interrupt: Interrupt
) -> Iterator[Source]:
    if not path.exists():
        raise FetchError(f"no such file: {url}")
    if not path.is_file():  # checked before open() because opening a FIFO would block
        raise FetchError(f"{url}: not a regular file")
    try:
        file: BinaryIO = open(path, "rb")  # noqa: SIM115 -- closed in the finally below
    except FileNotFoundError:
        raise FetchError(f"no such file: {url}") from None
    except OSError as exc:
        raise FetchError(f"{url}: cannot open: {exc.strerror or exc}") from None
    source: Source | None = None
    try:
        stat = os.fstat(file.fileno())
        if stat.st_size > config.max_compressed_bytes:
            raise FetchError(
                f"{url}: {stat.st_size} bytes is larger than max_compressed_bytes"
                f" ({config.max_compressed_bytes} bytes)"
            )
        source = Source(
            url,
            read=pace.reader(file.read, config.chunk_bytes, interrupt),
            limit=config.max_compressed_bytes,
            last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            size=stat.st_size,
        )
        yield source
    finally:
        if source is not None:
            source._close()
        file.close()


# --- HTTP --------------------------------------------------------------------------------

# One PoolManager per process, created on first use, so keep-alive connections are reused
# across jobs without threading a client object through the pipeline. Keyed by pid so a
# forked worker never shares sockets with its parent, and by CA bundle because that is a
# pool-wide setting (timeouts are per request).
_pools: dict[tuple[int, str | None], urllib3.PoolManager] = {}
_pools_lock = threading.Lock()


# The Interrupt of the fetch this thread is making, for the connection classes below.
_fetching = threading.local()


class _WatchedHTTPConnection(HTTPConnection):
    """A connection that an Interrupt can shut down from the moment it sends a request:
    waiting for the status line and headers (a server may drip those too) is then no
    longer beyond reach."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        interrupt: Interrupt | None = getattr(_fetching, "interrupt", None)
        if interrupt is not None:
            interrupt.watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _pool(ca_certs: str | None) -> urllib3.PoolManager:
    key = (os.getpid(), ca_certs)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            for stale in [k for k in _pools if k[0] != key[0]]:
                del _pools[stale]
            pool = urllib3.PoolManager(
                num_pools=16,
                maxsize=4,
                ca_certs=ca_certs,
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"},
            )
            pool.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
            _pools[key] = pool
        return pool


class _Retryable(Exception):
    """A failure before the first byte: nothing has gone downstream, so trying again is safe."""


@dataclass(slots=True)
class _Opened:
    response: urllib3.BaseHTTPResponse
    final_url: str
    first: bytes
    size: int | None
    read: Callable[[], bytes]


@contextmanager
def _open_http(
    url: str, config: FetchConfig, pace: _Pace, interrupt: Interrupt
) -> Iterator[Source]:
    opened = _open_with_retries(url, config, pace, interrupt)
    response = opened.response
    source = Source(
        url,
        read=opened.read,
        limit=config.max_compressed_bytes,
        first=opened.first,
        final_url=opened.final_url,
        last_modified=_http_date(response.headers.get("Last-Modified")),
        size=opened.size,
        encoded=bool(response.headers.get("Content-Encoding"))
        and not urlsplit(opened.final_url).path.endswith(".gz"),
    )
    try:
        yield source
    finally:
        source._close()
        _release(response, interrupt)


def _open_with_retries(url: str, config: FetchConfig, pace: _Pace, interrupt: Interrupt) -> _Opened:
    delay = config.backoff
    for _ in range(config.retries):
        try:
            return _attempt(url, config, pace, interrupt)
        except _Retryable:
            interrupt.sleep(delay)
            delay *= 2
    try:
        return _attempt(url, config, pace, interrupt)
    except _Retryable as exc:
        attempts = config.retries + 1
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        raise FetchError(f"{exc} (after {tries})") from None


def _attempt(url: str, config: FetchConfig, pace: _Pace, interrupt: Interrupt) -> _Opened:
    """One try: request, follow redirects, check status and size, read the first chunk."""
    interrupt.check(url)
    pace.check()
    pool = _pool(config.ca_certs)
    timeout = urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout)
    current = url
    _fetching.interrupt = interrupt
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = pool.urlopen(
                "GET",
                current,
                preload_content=False,
                decode_content=False,
                redirect=False,  # followed below, so every hop is checked against the allowlist
                retries=False,  # retried here, with backoff and only before the first byte
                timeout=timeout,
            )
        except (HTTPError, OSError) as exc:
            interrupt.forget()
            interrupt.check(url)  # the interrupt's or the deadline's doing, not the server's
            pace.check()
            _raise_for(exc, current)
        status = response.status
        if status in _REDIRECT_STATUSES and response.headers.get("Location"):
            target = urljoin(current, response.headers["Location"])
            _release(response, interrupt)
            try:
                check_allowed(target, config)
            except FetchError as exc:
                raise FetchError(f"{url}: redirected to a refused URL: {exc}") from None
            current = target
            continue
        if not 200 <= status < 300:
            _release(response, interrupt)
            where = current if current == url else f"{current} (redirected from {url})"
            message = f"HTTP {status} {_reason(response)} for {where}"
            if status >= 500:
                raise _Retryable(message)
            raise FetchError(message)
        return _first_chunk(url, current, response, config, pace, interrupt)
    raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")


def _first_chunk(
    url: str,
    final_url: str,
    response: urllib3.BaseHTTPResponse,
    config: FetchConfig,
    pace: _Pace,
    interrupt: Interrupt,
) -> _Opened:
    size = _content_length(response)
    if size is not None and size > config.max_compressed_bytes:
        _release(response, interrupt)
        raise FetchError(
            f"{url}: Content-Length {size} is larger than max_compressed_bytes"
            f" ({config.max_compressed_bytes} bytes)"
        )
    # Reading the first chunk inside the attempt makes a server that sends headers and then
    # stalls or hangs up count as a failure before the first byte, which is safe to retry.
    # read1 returns what one read of the socket gives, so that a trickle of bytes is seen
    # (and judged) as it comes rather than once a whole chunk has filled.
    read = pace.reader(
        lambda n: response.read1(n, decode_content=False), config.chunk_bytes, interrupt
    )
    try:
        first = read()
    except (HTTPError, OSError) as exc:
        _release(response, interrupt)
        _raise_for(exc, url)
    except LogIndexerError:
        _release(response, interrupt)
        raise
    return _Opened(response, final_url, first, size, read)


def _raise_for(exc: BaseException, url: str) -> NoReturn:
    message = f"{url}: {_describe(exc)}"
    if isinstance(exc, SSLError):
        raise FetchError(message) from None  # a certificate will not fix itself on retry
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError | ProtocolError | OSError):
        raise _Retryable(message) from None
    raise FetchError(message) from None


def _describe(exc: BaseException) -> str:
    """A short reason without urllib3's object reprs, on one line."""
    if isinstance(exc, NameResolutionError):
        text = "cannot resolve host name"
    elif isinstance(exc, NewConnectionError):
        cause = exc.__cause__ or exc.__context__
        reason = getattr(cause, "strerror", None) or "failed"
        text = f"cannot connect: {reason}"
    elif isinstance(exc, ConnectTimeoutError):
        text = "connect timed out"
    elif isinstance(exc, ReadTimeoutError):
        text = "read timed out"
    elif isinstance(exc, ProtocolError):
        inner = exc.args[1] if len(exc.args) > 1 else None
        text = f"connection broken ({inner!r})" if inner is not None else "connection broken"
    elif isinstance(exc, SSLError):
        text = f"TLS error: {exc}"
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def _reason(response: urllib3.BaseHTTPResponse) -> str:
    if response.reason:
        return response.reason
    try:
        return HTTPStatus(response.status).phrase
    except ValueError:
        return "(unknown status)"


def _content_length(response: urllib3.BaseHTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)  # HTTP dates are GMT by definition
    return parsed.astimezone(UTC)


def _release(response: urllib3.BaseHTTPResponse, interrupt: Interrupt) -> None:
    """Hand the connection back to the pool, closed unless the body was read to the end.

    urllib3 already returned a fully read response's connection to the pool, so close()
    only affects a partly read one: draining it instead could mean downloading the rest of
    a large log just to keep one connection.
    """
    interrupt.forget()
    response.close()
    response.release_conn()
