"""The field catalogue: how each document field is matched, read from the index template.

config/index-template.json is the one statement of the fields' semantics: the engines get
it as their index template, and the SQLite sink's query translator reads it here, so a
query means the same on every sink. Per field: its kind (analyzed text, exact keyword,
number, date, boolean), whether it has an exact `.raw` keyword sub-field, and aliases
(`syslog_program` -> `program`). A string field the template does not name is mapped by
its dynamic template; the default query field is the index's `index.query.default_field`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import Any

import orjson

from worker.errors import ConfigError
from worker.resources import resource_path

TEMPLATE = "index-template.json"
RAW = "raw"  # the exact sub-field's name: `build_name.raw`


class Kind(Enum):
    TEXT = "text"  # analyzed by the standard analyzer (worker.analysis.tokens)
    KEYWORD = "keyword"  # the exact value, case-sensitive
    INTEGER = "integer"
    LONG = "long"
    FLOAT = "float"
    DATE = "date"
    BOOLEAN = "boolean"

    @property
    def numeric(self) -> bool:
        return self in (Kind.INTEGER, Kind.LONG, Kind.FLOAT)


_KINDS = {kind.value: kind for kind in Kind} | {
    "short": Kind.INTEGER,
    "byte": Kind.INTEGER,
    "double": Kind.FLOAT,
    "half_float": Kind.FLOAT,
    "scaled_float": Kind.FLOAT,
    "date_nanos": Kind.DATE,
    "match_only_text": Kind.TEXT,
    "constant_keyword": Kind.KEYWORD,
    "wildcard": Kind.KEYWORD,
}


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """How one field (or sub-field) is indexed."""

    kind: Kind
    raw: FieldMapping | None = None  # the `.raw` keyword sub-field, if any
    # A keyword value longer than this is not indexed (is found by no query on it).
    ignore_above: int | None = None


@dataclass(frozen=True, slots=True)
class Field:
    """What a field name in a query refers to."""

    path: str  # the document field holding the value (an alias's target; no `.raw`)
    mapping: FieldMapping
    # Not named by the template: mapped from a document's value by the dynamic template
    # (strings) or as Elasticsearch maps a JSON number or boolean.
    dynamic: bool = False


@dataclass(frozen=True)
class Catalogue:
    fields: Mapping[str, FieldMapping]
    aliases: Mapping[str, str] = field(default_factory=dict)
    # The dynamic template's mapping for a string field the template does not name.
    dynamic_string: FieldMapping = FieldMapping(Kind.TEXT)
    default_field: str = "message"

    def lookup(self, name: str) -> Field | None:
        """What `name` (`project`, `build_name.raw`, `syslog_host`) refers to; None when
        it can be no field: a sub-field the template does not define (`message.raw`)."""
        path = self.aliases.get(name, name)
        mapping = self.fields.get(path)
        if mapping is not None:
            return Field(path, mapping)
        parent, dot, sub = name.rpartition(".")
        if dot and sub == RAW:
            parent_mapping = self.fields.get(parent)
            if parent_mapping is not None:
                return None if parent_mapping.raw is None else Field(parent, parent_mapping.raw)
            if parent in self.aliases:
                return None  # an alias has no sub-fields
            if self.dynamic_string.raw is not None:
                return Field(parent, self.dynamic_string.raw, dynamic=True)
        return Field(name, self.dynamic_string, dynamic=True)

    def exact_name(self, name: str) -> str:
        """The engine field holding `name`'s exact values, to group or sort by: its
        `.raw` sub-field where it has one (aliases resolved), else the field itself."""
        path = self.aliases.get(name, name)
        mapping = self.fields.get(path, None if "." in path else self.dynamic_string)
        return f"{path}.{RAW}" if mapping is not None and mapping.raw is not None else path


def _mapping(name: str, spec: Any) -> FieldMapping:
    if not isinstance(spec, dict) or not isinstance(spec.get("type", "object"), str):
        raise ConfigError(f"{TEMPLATE}: field {name!r}: a mapping must be an object with a type")
    kind = _KINDS.get(spec.get("type", "object"))
    if kind is None:
        raise ConfigError(f"{TEMPLATE}: field {name!r}: type {spec.get('type')!r} is not known")
    raw_spec = spec.get("fields", {}).get(RAW)
    raw = None if raw_spec is None else _mapping(f"{name}.{RAW}", raw_spec)
    ignore_above = spec.get("ignore_above")
    return FieldMapping(kind, raw, ignore_above if isinstance(ignore_above, int) else None)


def catalogue_of(template: Mapping[str, Any]) -> Catalogue:
    """The catalogue of an index template (composable: settings and mappings under
    "template")."""
    body = template.get("template", template)
    mappings = body.get("mappings", {})
    fields: dict[str, FieldMapping] = {}
    aliases: dict[str, str] = {}
    for name, spec in mappings.get("properties", {}).items():
        if isinstance(spec, dict) and spec.get("type") == "alias":
            aliases[name] = str(spec.get("path"))
        else:
            fields[name] = _mapping(name, spec)
    # Elasticsearch's default (its `.keyword` sub-field is not one the sinks use).
    dynamic_string = FieldMapping(Kind.TEXT)
    for entry in mappings.get("dynamic_templates", []):
        for name, rule in entry.items():
            if rule.get("match_mapping_type") == "string":
                dynamic_string = _mapping(name, rule.get("mapping", {}))
    settings = body.get("settings", {})
    default = settings.get("index.query.default_field", ["message"])
    defaults = [default] if isinstance(default, str) else list(default)
    if len(defaults) != 1 or defaults[0] not in fields:
        raise ConfigError(
            f"{TEMPLATE}: index.query.default_field must be one field of the mapping, got "
            f"{default!r}"
        )
    return Catalogue(fields, aliases, dynamic_string, defaults[0])


@cache
def catalogue() -> Catalogue:
    """The shipped template's catalogue (read once)."""
    try:
        template = orjson.loads(resource_path(TEMPLATE).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{TEMPLATE}: not JSON: {exc}") from None
    return catalogue_of(template)
