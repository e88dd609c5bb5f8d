"""worker/pipeline.py run_job end to end: a real HTTP log server, a real SQLite sink.

The per-file caps (issue 10): a gzip bomb is read up to the cap, indexed that far, and
the job's answer says it was truncated and why; binary data fails the job with a reason
and indexes nothing. Expected counts come from the generated input or the corpus file.
"""

from __future__ import annotations

import gzip
import random
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import gear
import pytest

from tests import test_gearman_worker
from tests.httpserver import LogServer, generated_body, serve_directory
from tests.paths import CORPUS, count_lines
from tests.test_gearman_worker import Running, job_for, submit
from worker.config import FetchConfig, SinkConfig, WorkerConfig
from worker.decode import DecodeStats
from worker.errors import FetchError
from worker.events import EventStats
from worker.job import Job, JobSummary
from worker.pipeline import parse_documents, run_job
from worker.redact import MASK, parse_redact_config
from worker.sinks import open_sink
from worker.sinks.base import Sink

MiB = 1024 * 1024
BOMB_LINES = 2_000_000
LONG_LINE = b"x" * 1023 + b"\n"  # 1 KiB
LONG_LINES = 8192  # 8 MiB of them, gzipped about 1000 to 1
DEVSTACKLOG = "os-loganalyze/devstacklog.txt.gz"  # 9x: 1.4 MB from 148 KB
JOB_OUTPUT = "zuul-jobs-fixture/job-output.txt"  # 54 lines


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogServer]:
    root = tmp_path_factory.mktemp("srv")
    (root / "bomb.txt.gz").write_bytes(gzip.compress(b"x\n" * BOMB_LINES, 9))
    (root / "long.txt.gz").write_bytes(gzip.compress(LONG_LINE * LONG_LINES, 9))
    (root / "random.bin").write_bytes(random.Random(10).randbytes(2_000_000))
    for source in (DEVSTACKLOG, JOB_OUTPUT):
        shutil.copy(CORPUS / source, root / Path(source).name)
    with serve_directory(root) as server:
        yield server


# A LogWorker answering over a real gear server, as tests/test_gearman_worker.py runs
# it, fetching from the server above, with a lines cap of its own.
worker = test_gearman_worker.worker
WORKER_MAX_LINES = 5000


@pytest.fixture
def worker_config(server: LogServer, gearman: gear.Server, tmp_path: Path) -> WorkerConfig:
    config = test_gearman_worker.make_worker_config(server, gearman, tmp_path)
    return replace(config, parse=replace(config.parse, max_lines=WORKER_MAX_LINES))


@pytest.fixture
def server(served: LogServer) -> LogServer:
    return served


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    store = open_sink(f"sqlite:{tmp_path / 'logs.db'}", SinkConfig())
    store.prepare()
    try:
        yield store
    finally:
        store.close()


def config(server: LogServer, **limits: float) -> WorkerConfig:
    """The default configuration, allowed to fetch from `server`, with `limits` set in
    the section each belongs to."""
    base = WorkerConfig()
    fetch = {k: v for k, v in limits.items() if k in FetchConfig.__dataclass_fields__}
    parse = {k: v for k, v in limits.items() if k not in fetch}
    return replace(
        base,
        fetch=replace(base.fetch, allow=(server.base_url + "/",), **fetch),  # type: ignore[arg-type]
        parse=replace(base.parse, **parse),  # type: ignore[arg-type]
    )


def run(server: LogServer, name: str, sink: Sink, **limits: float) -> JobSummary:
    job = Job(
        source_url=server.url(name),
        fields={"build_uuid": uuid.uuid4().hex, "filename": name},
        tags=(),
    )
    return run_job(job, config(server, **limits), sink)


def test_the_default_caps() -> None:
    defaults = WorkerConfig()
    assert defaults.parse.max_lines == 1_000_000
    assert defaults.fetch.max_decompression_ratio == 100
    assert defaults.fetch.ratio_after_bytes == 64 * MiB


def test_a_gzip_bomb_of_short_lines_stops_at_the_lines_cap(served: LogServer, sink: Sink) -> None:
    summary = run(served, "bomb.txt.gz", sink, max_lines=5000)
    assert summary.truncated == "lines cap 5000 reached"
    assert summary.lines == summary.documents == summary.indexed == 5000
    assert summary.failed == 0
    assert sink.count() == 5000
    # The answer the job sends carries the reason.
    assert JobSummary.from_json(summary.to_json()).truncated == "lines cap 5000 reached"


def test_a_file_of_exactly_the_lines_cap_is_not_truncated(served: LogServer, sink: Sink) -> None:
    lines = count_lines((CORPUS / JOB_OUTPUT).read_bytes())
    assert lines == 54
    summary = run(served, "job-output.txt", sink, max_lines=lines)
    assert summary.truncated == "" and summary.lines == 54
    summary = run(served, "job-output.txt", sink, max_lines=lines - 1)
    assert summary.truncated == "lines cap 53 reached" and summary.lines == 53


def test_a_gzip_bomb_of_long_lines_stops_at_the_ratio_cap(served: LogServer, sink: Sink) -> None:
    summary = run(served, "long.txt.gz", sink, ratio_after_bytes=MiB)
    assert summary.truncated.startswith("decompression ratio cap 100 reached after ")
    stopped_at = int(summary.truncated.rsplit(" ", 2)[-2])
    assert MiB < stopped_at < LONG_LINES * len(LONG_LINE)
    # Only lines before the data that crossed the cap are read.
    assert 0 < summary.lines <= stopped_at // len(LONG_LINE)
    assert summary.indexed == summary.lines == sink.count()


def test_the_ratio_cap_applies_only_past_its_size(served: LogServer, sink: Sink) -> None:
    # 8 MiB at about 1000 to 1, but the default cap only looks past 64 MiB.
    summary = run(served, "long.txt.gz", sink)
    assert summary.truncated == ""
    assert summary.lines == summary.indexed == LONG_LINES


def test_the_ratio_cap_spares_a_real_log_checked_from_its_first_bytes(
    served: LogServer, sink: Sink
) -> None:
    data = gzip.decompress((CORPUS / DEVSTACKLOG).read_bytes())
    summary = run(served, "devstacklog.txt.gz", sink, ratio_after_bytes=0)
    assert summary.truncated == ""
    assert summary.lines == count_lines(data)
    assert summary.decompressed_bytes == len(data)


def test_random_bytes_fail_the_job_and_index_nothing(served: LogServer, sink: Sink) -> None:
    with pytest.raises(FetchError, match="binary data, not a text log") as error:
        run(served, "random.bin", sink)
    assert "\n" not in str(error.value)
    assert sink.count() == 0


def test_binary_data_is_refused_in_the_jobs_answer(worker: Running, served: LogServer) -> None:
    outcome = submit(worker, job_for(served.url("random.bin"), "random.bin"))
    assert outcome.summary is None
    assert outcome.error is not None
    assert "binary data, not a text log" in outcome.error and "from offset 0" in outcome.error
    assert worker.count() == 0


def test_a_capped_file_is_a_warning_in_the_workers_log(
    worker: Running, served: LogServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="worker"):
        outcome = submit(worker, job_for(served.url("bomb.txt.gz"), "bomb.txt"))
    assert outcome.summary is not None and outcome.summary.lines == WORKER_MAX_LINES
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    url = served.url("bomb.txt.gz")
    assert warnings == [f"{url}: not read to its end: lines cap {WORKER_MAX_LINES} reached"]


# -- where redaction is wired ----------------------------------------------------------

LINES = b"2014-03-17 16:14:05.112 | + export OS_PASSWORD=hunter2\n2014-03-17 16:14:05.113 | + ls\n"


def documents(config: WorkerConfig, fields: dict[str, str]) -> list[dict]:
    job = Job(
        source_url="http://logs.example.org/b/job-output.txt", fields=fields, tags=("console",)
    )
    _, made = parse_documents(
        [LINES],
        job,
        config,
        last_modified=None,
        decode_stats=DecodeStats(),
        event_stats=EventStats(),
    )
    return [document.source for document in made]


def test_messages_and_the_jobs_fields_are_redacted_before_documents_exist() -> None:
    fields = {"build_name": "tempest", "build_ref": "refs/x?token=s3cr3t"}
    first, second = documents(WorkerConfig(), fields)
    assert first["message"] == f"+ export OS_PASSWORD={MASK}"
    assert second["message"] == "+ ls"
    assert first["build_ref"] == second["build_ref"] == f"refs/x?token={MASK}"
    assert first["build_name"] == "tempest"
    assert fields["build_ref"] == "refs/x?token=s3cr3t"  # the job's own dict is kept


def test_the_configured_rules_are_the_ones_applied() -> None:
    off = WorkerConfig(redact=parse_redact_config({"builtin": False}))
    first, _ = documents(off, {})
    assert first["message"] == "+ export OS_PASSWORD=hunter2"


# -- a body broken off mid-transfer is read again (issue 11) ---------------------------

# Generated lines of 53 bytes, each with its timestamp (tests/httpserver.py): whole
# lines only, each its own document.
CUT_SIZE = 53 * 20_000
CUT_AT = 300_000  # bytes: thousands of documents are written before the cut


def cut_job(server: LogServer, name: str) -> Job:
    # Credentials in the URL: the warning must not show them.
    url = server.url(name).replace("http://", "http://reader:s3cret@")
    return Job(source_url=url, fields={"build_uuid": uuid.uuid4().hex, "filename": name}, tags=())


def test_a_body_cut_once_is_read_again_and_counted_exactly(
    served: LogServer, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    served.behave("/cut-once.txt", body_size=CUT_SIZE, drop_after=CUT_AT, drop_times=1)
    lines = count_lines(b"".join(generated_body(CUT_SIZE)))
    job = cut_job(served, "cut-once.txt")
    with caplog.at_level("WARNING", logger="worker"):
        summary = run_job(job, config(served, chunk_bytes=32 * 1024), sink)
    assert served.hits["/cut-once.txt"] == 2
    # The whole read's counts only, and each line stored once.
    assert summary.lines == summary.documents == summary.indexed == lines
    assert sink.count('filename:"cut-once.txt"') == lines
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    masked = served.url("cut-once.txt").replace("http://", "http://***@")
    assert warning.startswith(f"{masked}: the log server broke off the body; reading it again")
    assert "(1 of 2)" in warning and "connection broken" in warning
    assert "s3cret" not in warning


def test_a_body_cut_every_time_fails_after_the_attempts_naming_the_log_server(
    served: LogServer, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    served.behave("/cut-always.txt", body_size=CUT_SIZE, drop_after=CUT_AT)
    job = cut_job(served, "cut-always.txt")
    with caplog.at_level("WARNING", logger="worker"), pytest.raises(FetchError) as caught:
        run_job(job, config(served, chunk_bytes=32 * 1024, reread_attempts=2), sink)
    assert served.hits["/cut-always.txt"] == 3
    message = str(caught.value)  # masked where it is answered, as every fetch error
    assert message.startswith(f"{job.source_url}: connection broken"), message
    assert message.endswith("(broken off in each of 3 reads)"), message
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 2
    # No read was whole: none of the file stays searchable.
    assert sink.count('filename:"cut-always.txt"') == 0


def test_no_reread_when_none_is_allowed(served: LogServer, sink: Sink) -> None:
    served.behave("/cut-no-reread.txt", body_size=CUT_SIZE, drop_after=CUT_AT, drop_times=1)
    job = cut_job(served, "cut-no-reread.txt")
    with pytest.raises(FetchError, match="connection broken"):
        run_job(job, config(served, chunk_bytes=32 * 1024, reread_attempts=0), sink)
    assert served.hits["/cut-no-reread.txt"] == 1
    assert sink.count('filename:"cut-no-reread.txt"') == 0
