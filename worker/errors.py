"""The project's few exception types.

Each carries a one-line reason that ends up in the Gearman job's answer or on the
command line, so messages name the problem (the key, the URL, the status) plainly.
"""


class LogIndexerError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(LogIndexerError):
    """Configuration is missing, malformed or inconsistent; the message names the key."""


class JobError(LogIndexerError):
    """A push-log job's arguments cannot be used."""


class FetchError(LogIndexerError):
    """A log file could not be fetched (refused URL, HTTP error, timeout, size limit)."""


class BodyBroken(FetchError):
    """The log server's connection broke off in the middle of a body (reset, closed
    early): nothing says the file is bad, and it can be read again from the start. A
    server idles out a connection we left unread while the sink held us up."""


class SinkError(LogIndexerError):
    """The search engine or database refused or failed a request."""


class EngineOutage(SinkError):
    """The engine stayed unreachable or overloaded longer than the sink may wait for it:
    the file has not failed, its job is worth running again once the engine is back.
    The message names the engine and the last cause."""


class QueryError(LogIndexerError):
    """A search query uses syntax the chosen sink cannot run."""


class Interrupted(LogIndexerError):
    """The worker was asked to stop in the middle of a job: the job goes back to Gearman
    for another worker instead of failing."""


# Long enough for an engine's reason with its cause; short enough that an outcome, a
# build summary or a job's answer holding twenty of them stays small.
MAX_REASON = 500


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """`text` as one line of at most `limit` characters: every error stored (outcomes,
    build summaries) or answered (WORK_DATA, the command line) goes through this, so
    an engine's multi-kilobyte Java dump or a long URL echoed back stays a readable
    line. A cut keeps the start and the end, where the cause usually is."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    # The marker's length depends on the count it gives: sized for the longest count.
    kept = max(limit - len(_cut_marker(len(flat))), 0)
    head = kept - kept // 3
    tail = kept - head
    return flat[:head] + _cut_marker(len(flat) - kept) + (flat[-tail:] if tail else "")


def _cut_marker(dropped: int) -> str:
    return f" … [{dropped:,} characters cut] … "
