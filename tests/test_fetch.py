"""worker/fetch.py against a real HTTP server on 127.0.0.1 serving the shared corpus."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.httpserver import (
    LogServer,
    free_port,
    generated_body,
    make_certificate,
    serve_directory,
)
from tests.paths import CORPUS, REPO
from worker import fetch
from worker.config import FetchConfig
from worker.errors import BodyBroken, FetchError, Interrupted
from worker.fetch import check_allowed, open_source

MiB = 1024 * 1024
LOGS = "os-loganalyze"


@pytest.fixture
def config(server: LogServer) -> FetchConfig:
    return FetchConfig(
        allow=(server.base_url + "/",),
        connect_timeout=2.0,
        read_timeout=2.0,
        retries=2,
        backoff=0.01,
        chunk_bytes=64 * 1024,
    )


def read_all(url: str, config: FetchConfig) -> tuple[bytes, fetch.Source]:
    with open_source(url, config) as source:
        data = b"".join(source.chunks)
    return data, source


def mtime(path: Path) -> datetime:
    # HTTP dates have whole seconds.
    return datetime.fromtimestamp(int(path.stat().st_mtime), UTC)


# --- HTTP content --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["console.html.gz", "syslog.txt", "devstack@c-api.service.log.txt"]
)
def test_corpus_files_arrive_byte_identical(server: LogServer, config: FetchConfig, name: str):
    path = CORPUS / LOGS / name
    data, source = read_all(server.url(f"{LOGS}/{name}"), config)
    assert data == path.read_bytes()  # .gz stays compressed despite Content-Encoding: gzip
    assert source.size == len(data) == source.received
    assert source.last_modified == mtime(path)
    assert source.last_modified.tzinfo is not None


def test_gzip_fallback_name_arrives_still_compressed(server: LogServer, config: FetchConfig):
    # Log servers answer "console.html" with console.html.gz and Content-Encoding: gzip.
    data, _ = read_all(server.url(f"{LOGS}/console.html"), config)
    assert data == (CORPUS / LOGS / "console.html.gz").read_bytes()
    assert data[:2] == b"\x1f\x8b"


def test_chunks_respect_chunk_bytes(server: LogServer, config: FetchConfig):
    with open_source(server.url(f"{LOGS}/syslog.txt"), config) as source:
        sizes = [len(chunk) for chunk in source.chunks]
    assert max(sizes) <= config.chunk_bytes
    assert len(sizes) > 10


def test_keep_alive_connection_is_reused(server: LogServer, config: FetchConfig):
    for _ in range(3):
        read_all(server.url(f"{LOGS}/devstack@c-vol.service.log.txt"), config)
    assert server.connections == 1
    assert fetch._pool(None) is fetch._pool(None)


def test_reading_after_the_context_ends_is_an_error(server: LogServer, config: FetchConfig):
    with open_source(server.url(f"{LOGS}/syslog.txt"), config) as source:
        next(source.chunks)
    with pytest.raises(FetchError, match="closed"):
        next(source.chunks)


# --- HTTP status and retries ---------------------------------------------------------------


def test_404_is_an_error_and_yields_nothing(server: LogServer, config: FetchConfig):
    url = server.url(f"{LOGS}/missing.txt")
    with pytest.raises(FetchError) as caught, open_source(url, config) as source:
        pytest.fail(f"opened a 404: {source}")
    assert str(caught.value) == f"HTTP 404 Not Found for {url}"
    assert server.hits[f"/{LOGS}/missing.txt"] == 1  # 4xx is not retried


def test_403_is_not_retried(server: LogServer, config: FetchConfig):
    server.behave("/secret.txt", status=403)
    with pytest.raises(FetchError, match="HTTP 403 Forbidden"):
        read_all(server.url("secret.txt"), config)
    assert server.hits["/secret.txt"] == 1


def test_500_then_200_succeeds_after_retries(server: LogServer, config: FetchConfig):
    name = f"/{LOGS}/syslog.txt"
    server.behave(name, fail_times=2)
    data, _ = read_all(server.url(name), config)
    assert data == (CORPUS / LOGS / "syslog.txt").read_bytes()
    assert server.hits[name] == 3


def test_500_always_fails_after_all_attempts(server: LogServer, config: FetchConfig):
    server.behave("/broken.txt", status=503)
    with pytest.raises(FetchError) as caught:
        read_all(server.url("broken.txt"), config)
    message = str(caught.value)
    assert "HTTP 503 Service Unavailable" in message
    assert server.url("broken.txt") in message
    assert "after 3 attempts" in message
    assert "\n" not in message
    assert server.hits["/broken.txt"] == config.retries + 1


def test_backoff_doubles(server: LogServer, config: FetchConfig, monkeypatch: pytest.MonkeyPatch):
    sleeps: list[float] = []
    monkeypatch.setattr(fetch.Interrupt, "sleep", lambda self, seconds: sleeps.append(seconds))
    server.behave("/broken.txt", status=500)
    with pytest.raises(FetchError):
        read_all(server.url("broken.txt"), replace(config, retries=3, backoff=0.5))
    assert sleeps == [0.5, 1.0, 2.0]


def test_connection_refused_is_retried_then_fails(config: FetchConfig):
    url = f"http://127.0.0.1:{free_port()}/x.txt"
    with pytest.raises(FetchError, match=r"cannot connect.*after 2 attempts") as caught:
        read_all(url, replace(config, allow=(url,), retries=1))
    assert url in str(caught.value)


def test_redirect_is_followed(server: LogServer, config: FetchConfig):
    server.behave("/latest/syslog.txt", redirect=f"/{LOGS}/syslog.txt")
    data, source = read_all(server.url("latest/syslog.txt"), config)
    assert data == (CORPUS / LOGS / "syslog.txt").read_bytes()
    assert source.final_url == server.url(f"{LOGS}/syslog.txt")


def test_redirect_outside_the_allowlist_is_refused(server: LogServer, config: FetchConfig):
    allowed = replace(config, allow=(server.url("public/"),))
    server.behave("/public/x.txt", redirect=f"/{LOGS}/syslog.txt")
    with pytest.raises(FetchError, match="not under an allowed prefix"):
        read_all(server.url("public/x.txt"), allowed)
    assert server.hits[f"/{LOGS}/syslog.txt"] == 0  # never even requested


def test_redirect_loop_stops(server: LogServer, config: FetchConfig):
    server.behave("/loop.txt", redirect="/loop.txt")
    with pytest.raises(FetchError, match="more than 5 redirects"):
        read_all(server.url("loop.txt"), config)
    assert server.hits["/loop.txt"] == 6


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl tool")
def test_https_with_ca_certs(tmp_path: Path):
    cert, key = make_certificate(tmp_path)
    with serve_directory(CORPUS, tls=(cert, key)) as tls_server:
        config = FetchConfig(allow=(tls_server.base_url,), retries=2, backoff=0.01)
        url = tls_server.url(f"{LOGS}/syslog.txt")
        with pytest.raises(FetchError, match="TLS error") as caught:
            read_all(url, config)  # the system CAs do not know this certificate
        assert "after" not in str(caught.value)  # a certificate does not fix itself: no retry
        data, _ = read_all(url, replace(config, ca_certs=str(cert)))
    assert data == (CORPUS / LOGS / "syslog.txt").read_bytes()
    assert tls_server.hits[f"/{LOGS}/syslog.txt"] == 1


# --- allowlist -----------------------------------------------------------------------------

ALLOW = FetchConfig(allow=("http://logs.example.org/logs", "https://ci.example.org/"))


@pytest.mark.parametrize(
    "url",
    [
        "http://logs.example.org/logs/job/1/console.html",
        "http://logs.example.org/logs",
        "http://LOGS.Example.org:80/logs/x.txt",
        "http://logs.example.org/logs/a%20b.txt?raw=1",
        "https://ci.example.org/anything/at/all.txt",
    ],
)
def test_allowed_urls(url: str):
    check_allowed(url, ALLOW)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://evil.example.org/logs/x.txt", "not under an allowed prefix"),
        ("http://logs.example.org/logs-evil/x.txt", "not under an allowed prefix"),
        ("http://logs.example.org/log", "not under an allowed prefix"),
        ("http://logs.example.org:8080/logs/x.txt", "not under an allowed prefix"),
        ("https://logs.example.org/logs/x.txt", "not under an allowed prefix"),
        ("http://ci.example.org/x.txt", "not under an allowed prefix"),
        ("http://logs.example.org@evil.example.org/logs/x", "not under an allowed prefix"),
        ("http://logs.example.org/logs/../secret", "'..'"),
        ("http://logs.example.org/logs/%2e%2e/secret", "'..'"),
        ("http://logs.example.org/logs/%2E%2E%2Fsecret", "'..'"),
        ("http://logs.example.org\\@evil.example.org/logs/x", "backslash"),
        ("http://logs.example.org/logs/x\r\nHost: evil", "control characters"),
        ("ftp://logs.example.org/logs/x.txt", "unsupported scheme"),
        ("/logs/x.txt", "local files are not allowed"),
        ("file:///logs/x.txt", "local files are not allowed"),
        ("http:///logs/x.txt", "no host"),
        ("", "empty URL"),
    ],
)
def test_refused_urls(url: str, reason: str):
    with pytest.raises(FetchError, match=reason) as caught:
        check_allowed(url, ALLOW)
    assert "\n" not in str(caught.value)


def test_refused_url_is_never_requested(server: LogServer, config: FetchConfig):
    with pytest.raises(FetchError, match="not under an allowed prefix"):
        read_all(server.url("x.txt"), replace(config, allow=(server.url("logs"),)))
    assert not server.hits


# --- local files ---------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> FetchConfig:
    (tmp_path / "allowed").mkdir()
    (tmp_path / "allowed" / "job.log").write_bytes(b"line 1\nline 2\n")
    (tmp_path / "secret.txt").write_bytes(b"secret\n")
    return FetchConfig(allow=(str(tmp_path / "allowed"),), allow_local=True, chunk_bytes=4)


def test_local_file_is_read_in_chunks(tmp_path: Path, local: FetchConfig):
    path = tmp_path / "allowed" / "job.log"
    with open_source(str(path), local) as source:
        chunks = list(source.chunks)
    assert b"".join(chunks) == path.read_bytes()
    assert max(map(len, chunks)) == 4
    assert source.size == path.stat().st_size
    assert source.last_modified == datetime.fromtimestamp(path.stat().st_mtime, UTC)


def test_local_corpus_file_by_file_url():
    config = FetchConfig(allow=(f"file://{CORPUS}",), allow_local=True)
    path = CORPUS / LOGS / "console.html.gz"
    data, _ = read_all(path.as_uri(), config)
    assert data == path.read_bytes()


def test_local_file_refused_when_allow_local_is_false(tmp_path: Path, local: FetchConfig):
    with pytest.raises(FetchError, match="local files are not allowed"):
        read_all(str(tmp_path / "allowed" / "job.log"), replace(local, allow_local=False))


@pytest.mark.parametrize("relative", ["secret.txt", "allowed/../secret.txt", "allowed-x/a"])
def test_local_file_outside_allowed_dir_is_refused(
    tmp_path: Path, local: FetchConfig, relative: str
):
    (tmp_path / "allowed-x").mkdir()
    (tmp_path / "allowed-x" / "a").write_bytes(b"a")
    with pytest.raises(FetchError, match="not under an allowed prefix"):
        read_all(f"{tmp_path}/{relative}", local)


def test_local_symlink_out_of_allowed_dir_is_refused(tmp_path: Path, local: FetchConfig):
    link = tmp_path / "allowed" / "link.txt"
    link.symlink_to(tmp_path / "secret.txt")
    with pytest.raises(FetchError, match="not under an allowed prefix"):
        read_all(str(link), local)


def test_local_missing_file(tmp_path: Path, local: FetchConfig):
    path = str(tmp_path / "allowed" / "gone.log")
    with pytest.raises(FetchError, match=f"^no such file: {path}$"):
        read_all(path, local)


def test_local_file_over_the_size_limit(tmp_path: Path, local: FetchConfig):
    with pytest.raises(FetchError, match="max_compressed_bytes"):
        read_all(str(tmp_path / "allowed" / "job.log"), replace(local, max_compressed_bytes=5))


# --- limits and failures mid-stream --------------------------------------------------------


def test_content_length_over_the_limit_fails_before_reading(server: LogServer, config: FetchConfig):
    name = f"/{LOGS}/syslog.txt"
    with pytest.raises(FetchError, match=r"Content-Length 4\d+ is larger than max_compressed"):
        read_all(server.url(name), replace(config, max_compressed_bytes=MiB))
    assert server.hits[name] == 1


def test_streamed_body_over_the_limit_stops(server: LogServer, config: FetchConfig):
    server.behave("/big.txt", body_size=20 * MiB, chunked=True)
    limit = MiB + 1000
    received: list[bytes] = []
    with (
        pytest.raises(FetchError, match="larger than max_compressed_bytes"),
        open_source(server.url("big.txt"), replace(config, max_compressed_bytes=limit)) as source,
    ):
        assert source.size is None
        received.extend(source.chunks)
    data = b"".join(received)
    assert MiB - config.chunk_bytes < len(data) <= limit
    assert data == b"".join(generated_body(20 * MiB))[: len(data)]


def test_chunked_body_without_content_length(server: LogServer, config: FetchConfig):
    server.behave("/chunked.txt", body_size=3 * MiB + 7, chunked=True)
    data, source = read_all(server.url("chunked.txt"), config)
    assert data == b"".join(generated_body(3 * MiB + 7))
    assert source.size is None


def test_read_timeout_before_the_first_byte_is_retried(server: LogServer, config: FetchConfig):
    server.behave("/slow.txt", delay=1.0, body_size=10)
    with pytest.raises(FetchError, match=r"read timed out \(after 2 attempts\)"):
        read_all(server.url("slow.txt"), replace(config, read_timeout=0.2, retries=1))
    assert server.hits["/slow.txt"] == 2


def test_read_timeout_mid_body_is_not_retried(server: LogServer, config: FetchConfig):
    server.behave("/stall.txt", body_size=MiB, stall_after=300_000, stall=1.5)
    received: list[bytes] = []
    with (
        pytest.raises(FetchError, match=r"read timed out after \d+ bytes"),
        open_source(server.url("stall.txt"), replace(config, read_timeout=0.3)) as source,
    ):
        received.extend(source.chunks)
    assert 0 < len(b"".join(received)) <= 300_000
    assert server.hits["/stall.txt"] == 1


def test_connection_dropped_mid_body(server: LogServer, config: FetchConfig):
    name = f"/{LOGS}/syslog.txt"
    server.behave(name, drop_after=500_000)
    received: list[bytes] = []
    with (
        pytest.raises(FetchError, match="connection broken") as caught,
        open_source(server.url(name), config) as source,
    ):
        received.extend(source.chunks)
    assert 0 < len(b"".join(received)) <= 500_000
    assert server.url(name) in str(caught.value)
    # Told apart from other failures: the file may be read again from the start.
    assert isinstance(caught.value, BodyBroken)
    assert server.hits[name] == 1


def test_large_body_streams_in_constant_memory(server: LogServer):
    # A fresh interpreter as consumer, so its peak RSS reflects this download only.
    size = 200 * MiB
    server.behave("/huge.txt", body_size=size)
    script = textwrap.dedent(
        """
        import resource, sys
        from worker.config import FetchConfig
        from worker.fetch import open_source

        config = FetchConfig(allow=(sys.argv[1],))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        total = 0
        with open_source(sys.argv[1], config) as source:
            for chunk in source.chunks:
                total += len(chunk)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(total, (after - before) * 1024)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, server.url("huge.txt")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    total, growth = map(int, done.stdout.split())
    assert total == size
    assert growth < 50 * MiB


# --- deadline, minimum rate and interrupts -----------------------------------------------


def read_into(received: list[bytes], url: str, config: FetchConfig, **options: Any) -> None:
    with open_source(url, config, **options) as source:
        received.extend(source.chunks)


def test_a_dripping_server_fails_the_file_at_max_seconds(server: LogServer, config: FetchConfig):
    # 4 bytes a second: every read returns within read_timeout, so only the deadline ends it.
    server.behave("/drip.txt", body_size=MiB, drip_after=1000, drip=4)
    received: list[bytes] = []
    slow = replace(config, max_seconds=1.5, min_bytes_per_second=0)
    with pytest.raises(FetchError) as caught:
        read_into(received, server.url("drip.txt"), slow)
    message = str(caught.value)
    assert message.startswith(server.url("drip.txt") + ": the log server did not send")
    assert "fetch.max_seconds (1.5 s)" in message
    assert len(b"".join(received)) < MiB
    assert server.hits["/drip.txt"] == 1


@pytest.mark.parametrize(
    "behaviour",
    [
        {"body_size": MiB, "stall_after": 200_000, "stall": 30.0},  # no byte for 30 s
        {"body_size": 10, "delay": 30.0},  # headers 30 s late
    ],
    ids=["stall", "silent"],
)
def test_a_silent_server_fails_the_file_at_max_seconds(
    server: LogServer, config: FetchConfig, behaviour: dict[str, Any]
):
    # read_timeout is longer than the silence: only the deadline can end it sooner.
    server.behave("/slow.txt", **behaviour)
    patient = replace(config, read_timeout=60.0, max_seconds=1.5, retries=0)
    with pytest.raises(FetchError) as caught:
        read_into([], server.url("slow.txt"), patient)
    assert str(caught.value).startswith(
        f"{server.url('slow.txt')}: the log server did not send the file within"
        " fetch.max_seconds (1.5 s)"
    )
    assert server.hits["/slow.txt"] == 1


def test_a_dripping_server_fails_the_file_below_the_minimum_rate(
    server: LogServer, config: FetchConfig
):
    server.behave("/drip.txt", body_size=MiB, drip_after=1000, drip=4)
    slow = replace(config, min_bytes_per_second=100, rate_window=1.0)
    with pytest.raises(FetchError) as caught:
        read_into([], server.url("drip.txt"), slow)
    message = str(caught.value)
    assert message.startswith(server.url("drip.txt") + ": the log server sent ")
    assert "below fetch.min_bytes_per_second (100)" in message


def test_the_minimum_rate_lets_a_file_above_it_through(server: LogServer, config: FetchConfig):
    # 8 KiB a second for 3 s, judged over a window of 2.5 s against a minimum of 1 KiB a
    # second: the window closes once, mid-transfer, on a rate eight times the minimum.
    # (A window shorter than the server's one-second drip would see silences.)
    server.behave("/fast.txt", body_size=24 * 1024, drip_after=0, drip=8192)
    strict = replace(config, min_bytes_per_second=1024, rate_window=2.5)
    data, _ = read_all(server.url("fast.txt"), strict)
    assert data == b"".join(generated_body(24 * 1024))


def test_the_time_the_consumer_takes_does_not_count_against_the_rate(
    server: LogServer, config: FetchConfig
):
    # A fast server, a consumer that holds each chunk longer than the rate window (a
    # sink waiting for its engine): judged over the consumer's time too, the rate of
    # 4 chunks in 1.2 s each would be far below the minimum of 100 MB/s.
    size = 4 * config.chunk_bytes
    server.behave("/fast.txt", body_size=size)
    strict = replace(config, min_bytes_per_second=100 * MiB, rate_window=1.0)
    received = bytearray()
    with open_source(server.url("fast.txt"), strict) as source:
        for chunk in source.chunks:
            received += chunk
            time.sleep(1.2)
    assert bytes(received) == b"".join(generated_body(size))


@pytest.mark.parametrize(
    "behaviour",
    [
        {"body_size": MiB, "stall_after": 200_000, "stall": 30.0},  # no byte for 30 s
        {"body_size": MiB, "drip_after": 200_000, "drip": 4},
        {"body_size": MiB, "drip_after": 200_000, "drip": 4, "no_length": True},
        {"body_size": MiB, "drip_after": 200_000, "drip": 4, "chunked": True},
    ],
    ids=["stall", "drip", "drip-without-length", "drip-chunked"],
)
def test_an_interrupt_ends_a_slow_transfer(
    server: LogServer, config: FetchConfig, behaviour: dict[str, Any]
):
    server.behave("/slow.txt", **behaviour)
    patient = replace(config, read_timeout=60.0, min_bytes_per_second=0)
    # Once the first chunk is in, the reader waits for more.
    error = interrupted_read(server.url("slow.txt"), patient, lambda received: bool(received))
    assert isinstance(error, Interrupted)
    assert str(error) == f"{server.url('slow.txt')}: the worker is stopping"


def interrupted_read(
    url: str, config: FetchConfig, started: Callable[[list[bytes]], bool]
) -> BaseException | None:
    """What reading `url` in a thread raises when interrupted once `started(received)`."""
    interrupt = fetch.Interrupt()
    received: list[bytes] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            read_into(received, url, config, interrupt=interrupt)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    while not started(received):
        assert thread.is_alive(), errors
        time.sleep(0.05)
    interrupt.interrupt("the worker is stopping")
    thread.join(timeout=20)  # a bound for the test, far above what it takes
    assert not thread.is_alive()
    return errors[0] if errors else None


def test_an_interrupt_refuses_every_later_file(server: LogServer, config: FetchConfig):
    interrupt = fetch.Interrupt()
    interrupt.interrupt("the worker is stopping")
    with pytest.raises(Interrupted, match="the worker is stopping"):
        read_all_with(server.url(f"{LOGS}/syslog.txt"), config, interrupt)
    assert server.hits[f"/{LOGS}/syslog.txt"] == 0


def read_all_with(url: str, config: FetchConfig, interrupt: fetch.Interrupt) -> bytes:
    received: list[bytes] = []
    read_into(received, url, config, interrupt=interrupt)
    return b"".join(received)


# --- is the body whole? ----------------------------------------------------------------------


def test_content_length_makes_the_length_known(server: LogServer, config: FetchConfig):
    data, source = read_all(server.url(f"{LOGS}/syslog.txt"), config)
    assert source.ended and source.length_known
    assert fetch.verify_length(source, None, len(data))


def test_a_body_without_length_is_not_known_whole(server: LogServer, config: FetchConfig):
    server.behave("/nolength.txt", body_size=300_000, no_length=True)
    data, source = read_all(server.url("nolength.txt"), config)
    assert data == b"".join(generated_body(300_000))
    assert source.ended and not source.length_known
    assert fetch.verify_length(source, None, len(data)) is False
    assert fetch.verify_length(source, 300_000, len(data)) is True


def test_a_body_without_length_cut_short_fails_against_the_listed_size(
    server: LogServer, config: FetchConfig
):
    # The hang-up ends the body exactly like a complete one: only the listing can tell.
    server.behave("/cut.txt", body_size=300_000, no_length=True, drop_after=100_000)
    data, source = read_all(server.url("cut.txt"), config)
    assert len(data) == 100_000 and source.ended
    with pytest.raises(FetchError) as caught:
        fetch.verify_length(source, 300_000, len(data))
    assert str(caught.value) == (
        f"{server.url('cut.txt')}: the body ended after 100000 bytes received; the listing"
        " gives 300000 bytes (no Content-Length: the connection ended early)"
    )


def test_a_chunked_body_cut_short_fails(server: LogServer, config: FetchConfig):
    server.behave("/cut.txt", body_size=3 * MiB, chunked=True, drop_after=500_000)
    with pytest.raises(FetchError, match=r"connection broken .* after \d+ bytes"):
        read_all(server.url("cut.txt"), config)


def test_an_interrupt_ends_the_wait_for_the_status_line(server: LogServer, config: FetchConfig):
    server.behave("/silent.txt", delay=30.0, body_size=10)  # headers 30 s late
    patient = replace(config, read_timeout=60.0)
    # The request is in: the reader waits for the answer.
    error = interrupted_read(
        server.url("silent.txt"), patient, lambda _: server.hits["/silent.txt"] > 0
    )
    assert isinstance(error, Interrupted)
    assert server.hits["/silent.txt"] == 1  # not retried
