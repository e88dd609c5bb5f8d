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


class SinkError(LogIndexerError):
    """The search engine or database refused or failed a request."""


class QueryError(LogIndexerError):
    """A search query uses syntax the chosen sink cannot run."""


class Interrupted(LogIndexerError):
    """The worker was asked to stop in the middle of a job: the job goes back to Gearman
    for another worker instead of failing."""
