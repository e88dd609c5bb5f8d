"""worker.fields: the catalogue read from the shipped index template and from others."""

import pytest

from worker.errors import ConfigError
from worker.fields import Field, FieldMapping, Kind, catalogue, catalogue_of

TEXT_RAW = FieldMapping(Kind.TEXT, FieldMapping(Kind.KEYWORD, ignore_above=256))
RAW_256 = FieldMapping(Kind.KEYWORD, ignore_above=256)

# (name in a query, what the shipped template (the historical index's mapping) makes of it)
SHIPPED = [
    ("message", Field("message", FieldMapping(Kind.TEXT))),
    ("build_name", Field("build_name", TEXT_RAW)),
    ("build_name.raw", Field("build_name", RAW_256)),
    ("tags.raw", Field("tags", RAW_256)),
    ("filename.raw", Field("filename", FieldMapping(Kind.KEYWORD, ignore_above=4096))),
    ("syslog_program", Field("program", TEXT_RAW)),
    ("syslog_pid", Field("pid", TEXT_RAW)),
    ("syslog_host", Field("host", TEXT_RAW)),
    ("line_number", Field("line_number", FieldMapping(Kind.INTEGER))),
    ("generation", Field("generation", FieldMapping(Kind.LONG))),
    ("error_pr", Field("error_pr", FieldMapping(Kind.FLOAT))),
    ("@timestamp", Field("@timestamp", FieldMapping(Kind.DATE))),
    ("truncated", Field("truncated", FieldMapping(Kind.BOOLEAN))),
    ("file_key", Field("file_key", FieldMapping(Kind.KEYWORD))),
    # Fields the template does not name: its dynamic template maps strings.
    ("rare_field", Field("rare_field", TEXT_RAW, dynamic=True)),
    ("rare_field.raw", Field("rare_field", RAW_256, dynamic=True)),
    # No such field: message has no .raw, an alias no sub-fields.
    ("message.raw", None),
    ("syslog_program.raw", None),
]


@pytest.mark.parametrize(("name", "expected"), SHIPPED)
def test_the_shipped_template(name: str, expected: Field | None) -> None:
    assert catalogue().lookup(name) == expected


def test_the_default_field_is_the_indexs() -> None:
    assert catalogue().default_field == "message"
    template = {
        "settings": {"index.query.default_field": "body"},
        "mappings": {"properties": {"body": {"type": "text"}}},
    }
    assert catalogue_of(template).default_field == "body"


def test_keyword_strings_and_no_dynamic_template() -> None:
    dynamic = [{"s": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}]
    keyword = {
        "mappings": {"properties": {"message": {"type": "text"}}, "dynamic_templates": dynamic}
    }
    assert catalogue_of(keyword).lookup("x") == Field("x", FieldMapping(Kind.KEYWORD), True)
    assert catalogue_of(keyword).lookup("x.raw") == Field("x.raw", FieldMapping(Kind.KEYWORD), True)
    # Without a dynamic template a new string is text, as Elasticsearch maps it.
    plain = {"mappings": {"properties": {"message": {"type": "text"}}}}
    assert catalogue_of(plain).lookup("x") == Field("x", FieldMapping(Kind.TEXT), True)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ({"mappings": {"properties": {"a": {"type": "geo_shape"}}}}, "type 'geo_shape'"),
        ({"mappings": {"properties": {"a": "text"}}}, "field 'a'"),
        ({"settings": {"index.query.default_field": ["*"]}}, "default_field"),
    ],
)
def test_a_template_it_cannot_read_is_one_line(template: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        catalogue_of(template)
