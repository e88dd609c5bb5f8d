"""An Elasticsearch or OpenSearch error object as the one line we store and print.

The engines nest the reason that says what to change (a parse error, a number that is
not one) in `caused_by`, or per shard for a search that failed on every shard, under
a generic outer error ("all shards failed"); a reason may also quote a whole value
back (40 KB of it for a term too long for a keyword).
"""

from __future__ import annotations

from typing import Any

from worker.errors import one_line

# Each error of the chain is cut to this, so that the innermost cause still fits in
# the line (errors.MAX_REASON).
CAUSE_CHARS = 200
MAX_CAUSES = 4


def describe(error: dict[str, Any]) -> str:
    """ "type: reason" of `error` and of each error it was caused by, outermost first:
    "search_phase_execution_exception: all shards failed caused by:
    query_shard_exception: ... caused by: parse_exception: Cannot parse ..."."""
    return one_line(" caused by: ".join(_causes(error)))


def _causes(error: dict[str, Any]) -> list[str]:
    parts: list[str] = []
    previous = ""
    node: Any = error
    while isinstance(node, dict) and len(parts) < MAX_CAUSES:
        text = _unrepeated(" ".join(str(node.get("reason", "")).split()))
        # A cause repeating the reason before it (Lucene's token_mgr_error) adds nothing.
        if not parts or text not in previous:
            parts.append(one_line(f"{node.get('type', 'error')}: {text}", CAUSE_CHARS))
        previous = text
        node = node.get("caused_by") or _shard_reason(node)
    return parts


def _unrepeated(text: str) -> str:
    """`text` without the copy of its own end that it quotes in brackets: a date the
    engines cannot read is "failed to parse date field [x] with format [f]: [failed to
    parse date field [x] with format [f]]"."""
    if not text.endswith("]"):
        return text
    start = text.find(": [")
    while start >= 0:
        quoted = text[start + 3 : -1]
        if quoted and text[:start].endswith(quoted):
            return text[:start]
        start = text.find(": [", start + 1)
    return text


def _shard_reason(error: dict[str, Any]) -> Any:
    """A search that failed on every shard gives its cause per shard (Elasticsearch
    gives it nowhere else): the first shard's."""
    shards = error.get("failed_shards")
    if isinstance(shards, list) and shards and isinstance(shards[0], dict):
        return shards[0].get("reason")
    return None
