"""Where backfill finds builds: a Zuul REST API, a file of log URLs, a log-server tree.

Each source yields `BuildRef`s: a build's log root plus whatever metadata the source
knows. Listing the files and deciding which to index is the hook's code (plan.py).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import urllib3
from dateutil.parser import isoparse

from log_shipper.listing import index_page_links
from log_shipper.metadata import normalise_status, normalise_voting
from worker.errors import ConfigError, FetchError


@dataclass(frozen=True, slots=True)
class BuildRef:
    log_url: str  # the build's log root
    fields: dict[str, Any] = field(default_factory=dict)  # document field names
    problem: str = ""  # why the source could not read this build's record (it is not indexed)

    @property
    def key(self) -> str:
        """What the checkpoint remembers a build by."""
        return str(self.fields.get("build_uuid") or self.log_url)


@dataclass(frozen=True, slots=True)
class ZuulFilters:
    job: str | None = None
    project: str | None = None
    pipeline: str | None = None
    branch: str | None = None
    result: str | None = None
    since: datetime | None = None  # on the build's end (else start) time
    until: datetime | None = None


def parse_time(value: str, option: str) -> datetime:
    try:
        moment = isoparse(value)
    except (ValueError, OverflowError):
        raise ConfigError(f"{option}: not an ISO-8601 date or time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def zuul_build_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """Document fields from one Zuul API build record.

    Older Zuul puts project/branch/change/... at the top of the record; newer Zuul
    nests them in a `ref` object. Both are read.
    """
    ref = record.get("ref")
    where: Mapping[str, Any] = ref if isinstance(ref, Mapping) else record
    buildset = record.get("buildset")
    fields: dict[str, Any] = {
        "build_uuid": record.get("uuid"),
        "build_name": record.get("job_name"),
        "build_status": normalise_status(record["result"]) if record.get("result") else None,
        "build_queue": record.get("pipeline") or _nested(buildset, "pipeline"),
        "project": where.get("project"),
        "build_branch": where.get("branch"),
        "build_change": where.get("change"),
        "build_patchset": where.get("patchset"),
        "build_ref": where.get("ref") if isinstance(ref, Mapping) else record.get("ref"),
        "build_newrev": where.get("newrev"),
        "build_set": _nested(buildset, "uuid"),
        "build_node": record.get("node_name"),
        "build_end_time": _utc(record.get("end_time")),
    }
    if record.get("voting") is not None:
        fields["voting"] = normalise_voting(record["voting"])
    return {k: str(v) for k, v in fields.items() if v not in (None, "")}


def _nested(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def _utc(value: Any) -> str | None:
    """Zuul writes naive UTC times ("2026-11-20T10:00:00"); make that explicit."""
    if not value:
        return None
    return parse_time(str(value), "end_time").astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record_time(record: Mapping[str, Any]) -> datetime | None:
    key = "end_time" if record.get("end_time") else "start_time"
    return parse_time(str(record[key]), key) if record.get(key) else None


def _zuul_build(record: Mapping[str, Any]) -> tuple[datetime | None, BuildRef]:
    """A record's time and its build. An unreadable record is a build with a problem (and
    no time, so no filter drops it): one bad record must not end a backfill."""
    log_url = str(record.get("log_url") or "")
    try:
        return _record_time(record), BuildRef(log_url, zuul_build_fields(record))
    except ConfigError as exc:
        known = {"build_uuid": str(record["uuid"])} if record.get("uuid") else {}
        return None, BuildRef(log_url, known, f"Zuul API record: {exc}")


def builds_from_zuul(
    api_url: str,
    filters: ZuulFilters,
    *,
    page_size: int = 100,
    http: urllib3.PoolManager | None = None,
    timeout: float = 30.0,
) -> Iterator[BuildRef]:
    """Page through `<api_url>/builds`, newest first, applying the filters.

    Zuul filters by job, project, pipeline, branch and result itself; the time window
    is applied here, and paging stops at the first page entirely older than `since`.
    """
    http = http or urllib3.PoolManager()
    query = {
        "job_name": filters.job,
        "project": filters.project,
        "pipeline": filters.pipeline,
        "branch": filters.branch,
        "result": filters.result,
    }
    skip = 0
    while True:
        params = {k: v for k, v in query.items() if v}
        params.update(limit=str(page_size), skip=str(skip))
        url = f"{api_url.rstrip('/')}/builds?{urlencode(params)}"
        try:
            response = http.request("GET", url, timeout=timeout, retries=urllib3.Retry(3))
        except urllib3.exceptions.HTTPError as exc:
            raise FetchError(f"Zuul API {url}: {exc}") from None
        if response.status != 200:
            raise FetchError(f"Zuul API {url}: HTTP {response.status}")
        try:
            page = orjson.loads(response.data)
        except orjson.JSONDecodeError:
            raise FetchError(f"Zuul API {url}: answer is not JSON") from None
        if not isinstance(page, list):
            raise FetchError(f"Zuul API {url}: expected a list of builds")
        older = 0
        for record in page:
            if not isinstance(record, Mapping):
                raise FetchError(f"Zuul API {url}: a build record is not a JSON object")
            moment, ref = _zuul_build(record)
            if moment is not None and filters.since is not None and moment < filters.since:
                older += 1
                continue
            if moment is not None and filters.until is not None and moment >= filters.until:
                continue
            if not record.get("log_url"):
                continue  # a build that never ran (skipped, node failure) has no logs
            yield ref
        if len(page) < page_size or (page and older == len(page)):
            return
        skip += len(page)


def builds_from_file(path: str | Path) -> Iterator[BuildRef]:
    """One build per line: `LOG_URL [JSON object of document fields]`; # comments."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        url, _, rest = text.partition(" ")
        fields: dict[str, Any] = {}
        if rest.strip():
            try:
                fields = orjson.loads(rest)
            except orjson.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: metadata is not valid JSON: {exc}") from None
            if not isinstance(fields, dict):
                raise ConfigError(f"{path}:{number}: metadata must be a JSON object")
        yield BuildRef(url, fields)


# A directory is a build's log root when it holds one of these.
_BUILD_MARKERS = re.compile(r"^(job-output\.txt(\.gz)?|zuul-manifest\.json|console\.html(\.gz)?)$")


def builds_from_log_tree(
    root_url: str, *, max_depth: int = 6, http: urllib3.PoolManager | None = None
) -> Iterator[BuildRef]:
    """Walk HTTP index pages below `root_url`; every directory holding a build marker
    (job-output.txt, zuul-manifest.json, console.html) is one build, not descended."""
    http = http or urllib3.PoolManager()
    pending = deque([(root_url.rstrip("/") + "/", 0)])
    while pending:
        url, depth = pending.popleft()
        url, links = index_page_links(http, url)
        names = [link[len(url) :] for link in links]
        if any(_BUILD_MARKERS.match(name.rstrip("/")) for name in names):
            yield BuildRef(url)
            continue
        if depth < max_depth:
            pending.extend((link, depth + 1) for link in links if link.endswith("/"))
