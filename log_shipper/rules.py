"""File rules: which files of a build's log tree are indexed, and with which tags.

The rules live in YAML (see config/rules.yaml for the format). They are validated once,
when loaded, so that every mistake is reported with the key and the rule index
("rules.yaml: files[3].name: invalid regex: ...") before any job is submitted.

Paths are matched with any trailing ".gz" removed: log servers store most files
compressed, and a rule written for "syslog.txt" must not care whether this build's copy
happens to be "syslog.txt.gz".
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from worker.config import load_yaml
from worker.errors import ConfigError
from worker.formats import FORMATS
from worker.job import FileOptions
from worker.resources import resource_path

# Rule filters use short names; builds carry the historical index field names, which
# existing consumers query, so the build mapping is keyed by those.
FILTER_FIELDS: dict[str, str] = {
    "job": "build_name",
    "pipeline": "build_queue",
    "project": "project",
    "branch": "build_branch",
}

_TOP_KEYS = frozenset({"max_bytes", "exclude", "files"})
_RULE_KEYS = frozenset(
    {"name", "tags", "format", "drop_debug", "drop_xtrace", "max_bytes", *FILTER_FIELDS}
)

GZ = ".gz"


def logical_path(path: str) -> str:
    """The path a file is known by, whether or not this copy is gzip-compressed."""
    return path.removesuffix(GZ) if path.endswith(GZ) and len(path) > len(GZ) else path


@dataclass(frozen=True, slots=True)
class FileRule:
    pattern: re.Pattern[str]  # searched in the path relative to the log root, ".gz" removed
    tags: tuple[str, ...] = ()
    options: FileOptions = field(default_factory=FileOptions)
    # build field name (historical, e.g. "build_name") -> regex the whole value must match
    filters: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    max_bytes: int | None = None  # overrides Rules.max_bytes for files this rule matches

    def applies_to(self, build: Mapping[str, object] | None) -> bool:
        for name, regex in self.filters.items():
            value = None if build is None else build.get(name)
            # A build that does not say which job/branch it is cannot be shown to fit a
            # rule that is restricted to some, so the rule stays out.
            if value is None or regex.fullmatch(str(value)) is None:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Selection:
    """A file that is to be indexed."""

    path: str  # as listed, relative to the log root (may end in .gz)
    filename: str  # the path without .gz: the documents' `filename` field
    tags: tuple[str, ...]  # rule tags, then the basename, then the basename without .gz
    options: FileOptions
    rule: int  # index of the rule in `files`


@dataclass(frozen=True, slots=True)
class Skip:
    """A file that is not indexed, and why."""

    path: str
    reason: str


class ListedFile(Protocol):
    """What `Rules.select` needs of a listing entry (listing.FileEntry has it)."""

    @property
    def path(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def size(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Selected:
    """One listed file and the decision about it."""

    path: str
    url: str
    size: int | None
    filename: str
    tags: tuple[str, ...] = ()
    options: FileOptions = field(default_factory=FileOptions)
    reason: str | None = None  # why the file is skipped; None when it is indexed

    @property
    def indexed(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class Rules:
    exclude: tuple[re.Pattern[str], ...] = ()
    files: tuple[FileRule, ...] = ()
    max_bytes: int | None = None  # default size cap; None: no cap
    # Identifies the rules' content: a build indexed under other rules is not "done".
    digest: str = ""

    def decide(
        self,
        path: str,
        build: Mapping[str, object] | None = None,
        size: int | None = None,
    ) -> Selection | Skip:
        name = logical_path(path)
        for index, regex in enumerate(self.exclude):
            if regex.search(name):
                return Skip(path, f"excluded by exclude[{index}] ({regex.pattern})")
        filtered: int | None = None
        for index, rule in enumerate(self.files):
            if not rule.pattern.search(name):
                continue
            if not rule.applies_to(build):
                if filtered is None:
                    filtered = index
                continue
            cap = rule.max_bytes if rule.max_bytes is not None else self.max_bytes
            if cap is not None and size is not None and size > cap:
                return Skip(path, f"larger than cap: {size} > {cap} bytes (files[{index}])")
            return Selection(
                path=path,
                filename=name,
                tags=file_tags(rule.tags, path),
                options=rule.options,
                rule=index,
            )
        if filtered is not None:
            return Skip(path, f"filtered out: files[{filtered}] does not apply to this build")
        return Skip(path, "no rule matched")

    def match(
        self,
        path: str,
        build: Mapping[str, object] | None = None,
        size: int | None = None,
    ) -> Selection | None:
        decision = self.decide(path, build, size)
        return decision if isinstance(decision, Selection) else None

    def select(
        self, entries: Iterable[ListedFile], build: Mapping[str, object] | None = None
    ) -> list[Selected]:
        """Decide every listed file, in listing order.

        When both "x.gz" and "x" are listed they are one logical file, indexed once:
        the .gz copy is chosen (it is the one log servers usually store, and the
        smaller one to fetch; the worker decompresses by magic number). The plain
        copy is reported as skipped, so nothing disappears from the report.
        """
        listed = list(entries)
        paths = {entry.path for entry in listed}
        seen: set[str] = set()
        result: list[Selected] = []
        for entry in listed:
            name = logical_path(entry.path)
            if entry.path in seen:
                result.append(_skipped(entry, name, "listed twice"))
                continue
            seen.add(entry.path)
            if entry.path == name and name + GZ in paths:
                result.append(_skipped(entry, name, f"same file as {name + GZ} (preferred)"))
                continue
            decision = self.decide(entry.path, build, entry.size)
            if isinstance(decision, Skip):
                result.append(_skipped(entry, name, decision.reason))
            else:
                result.append(
                    Selected(
                        path=entry.path,
                        url=entry.url,
                        size=entry.size,
                        filename=decision.filename,
                        tags=decision.tags,
                        options=decision.options,
                    )
                )
        return result


def _skipped(entry: ListedFile, name: str, reason: str) -> Selected:
    return Selected(path=entry.path, url=entry.url, size=entry.size, filename=name, reason=reason)


def file_tags(rule_tags: Iterable[str], path: str) -> tuple[str, ...]:
    """Rule tags, then the basename and the basename without .gz, without repeats.

    The same order `worker.documents.file_identity` extends a job's tags in, so the
    tags a job carries are exactly the tags its documents get.
    """
    basename = path.rsplit("/", 1)[-1]
    tags: list[str] = []
    for tag in (*rule_tags, basename, logical_path(basename)):
        if tag not in tags:
            tags.append(tag)
    return tuple(tags)


def parse_rules(raw: Any, source_name: str = "rules") -> Rules:
    """Validate the parsed YAML; every error names `source_name`, the key and rule index."""
    try:
        rules = _parse(raw)
    except ConfigError as exc:
        raise ConfigError(f"{source_name}: {exc}") from None
    canonical = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
    return dataclasses.replace(rules, digest=hashlib.sha256(canonical).hexdigest()[:16])


def load_rules(path: str | Path) -> Rules:
    return parse_rules(load_yaml(path), str(path))


def default_rules() -> Rules:
    return load_rules(resource_path("rules.yaml"))


def _parse(raw: Any) -> Rules:
    if not isinstance(raw, dict):
        raise ConfigError("top level must be a mapping with keys files, exclude, max_bytes")
    unknown = sorted(str(key) for key in raw if key not in _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key")
    max_bytes = _size(raw.get("max_bytes"), "max_bytes")
    exclude_raw = raw.get("exclude", [])
    if exclude_raw is None:
        exclude_raw = []
    if not isinstance(exclude_raw, list):
        raise ConfigError("exclude must be a list of regexes")
    exclude = tuple(_regex(item, f"exclude[{i}]") for i, item in enumerate(exclude_raw))
    files_raw = raw.get("files")
    if not isinstance(files_raw, list) or not files_raw:
        # An empty rule list would silently index nothing at all.
        raise ConfigError("files must be a non-empty list of rules")
    files = tuple(_rule(item, f"files[{i}]") for i, item in enumerate(files_raw))
    return Rules(exclude=exclude, files=files, max_bytes=max_bytes)


def _rule(raw: Any, where: str) -> FileRule:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping with at least a name")
    unknown = sorted(str(key) for key in raw if key not in _RULE_KEYS)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key")
    if "name" not in raw:
        raise ConfigError(f"{where}.name: missing")
    pattern = _regex(raw["name"], f"{where}.name")
    tags_raw = raw.get("tags", [])
    if isinstance(tags_raw, str):
        tags_raw = [tags_raw]
    if not isinstance(tags_raw, list):
        raise ConfigError(f"{where}.tags must be a list of strings")
    tags: list[str] = []
    for i, tag in enumerate(tags_raw):
        if not isinstance(tag, str) or not tag.strip():
            raise ConfigError(f"{where}.tags[{i}] must be a non-empty string")
        if tag not in tags:
            tags.append(tag)
    fmt = raw.get("format")
    if fmt is not None and (not isinstance(fmt, str) or fmt not in FORMATS):
        # Caught here, not by every job of every build the rule matches.
        known = ", ".join(sorted(FORMATS))
        raise ConfigError(f"{where}.format: unknown format {fmt!r} (known formats: {known})")
    for key in ("drop_debug", "drop_xtrace"):
        if key in raw and not isinstance(raw[key], bool):
            raise ConfigError(f"{where}.{key} must be true or false")
    options = FileOptions(
        format=fmt,
        drop_debug=bool(raw.get("drop_debug", False)),
        drop_xtrace=bool(raw.get("drop_xtrace", False)),
    )
    filters = {
        build_field: _regex(raw[key], f"{where}.{key}")
        for key, build_field in FILTER_FIELDS.items()
        if key in raw
    }
    return FileRule(
        pattern=pattern,
        tags=tuple(tags),
        options=options,
        filters=filters,
        max_bytes=_size(raw.get("max_bytes"), f"{where}.max_bytes"),
    )


def _regex(value: Any, where: str) -> re.Pattern[str]:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty regex string")
    try:
        return re.compile(value)
    except re.error as exc:
        raise ConfigError(f"{where}: invalid regex: {exc}") from None


def _size(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where} must be a positive whole number of bytes")
    return value
