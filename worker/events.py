"""From records to events: timestamp inheritance and multi-line grouping."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Event:
    """One future document: a line, or several grouped lines (a traceback)."""

    line_number: int  # number of the event's first line
    timestamp: str  # ISO-8601 UTC, always set (inherited or fallback when the line has none)
    message: str  # lines joined with "\n"
    fields: dict[str, str] = field(default_factory=dict)
    line_count: int = 1
    truncated: bool = False  # a line was cut at the length limit, or the event at the line cap
