"""Elasticsearch's `standard` analyzer as it treats CI text, for the SQLite sink.

The standard analyzer is Lucene's StandardTokenizer (the Unicode word-break rules of
UAX #29, as Lucene's grammar implements them) followed by lower-casing. What matters for
CI logs: letters joined by `.`, `:` or `'` stay one token (`nova.compute.manager`,
`finished:failure`, `couldn't`), digits joined by `.`, `,`, `;` or `'` too (`503.58230`),
letters and digits side by side join (`py36`, `v1.2.3`), `_` joins anything, every other
character separates. Ideographs and hiragana are one token per character, katakana,
Hangul and Thai-like scripts one per run, emoji one per sequence. A token longer than 255
UTF-16 code units is cut there and the scan resumes at the cut, as Lucene's scanner does.

`tokens` is what both sides of the SQLite sink use: the index (`index_text`) and the query
translator, so a query term means what it means on Elasticsearch.
"""

from __future__ import annotations

import re

import regex

MAX_TOKEN_LENGTH = 255  # UTF-16 code units, Elasticsearch's default max_token_length

# Pure ASCII text (nearly every CI line) has only these classes; the stdlib engine is
# faster than `regex` on them. Possessive quantifiers keep long runs linear.
_ASCII_LETTERS = r"[A-Za-z]++(?:[.:'][A-Za-z]++)*+"
_ASCII_DIGITS = r"[0-9]++(?:[.,;'][0-9]++)*+"
_ASCII_GROUP = f"(?:{_ASCII_LETTERS}|{_ASCII_DIGITS})"
# The look-ahead lets the engine skip separators quickly.
_ASCII_TOKEN = re.compile(f"(?=[A-Za-z0-9_])_*+{_ASCII_GROUP}(?:_*+{_ASCII_GROUP})*+_*+")


# Unicode's Extended_Pictographic property (emoji-data.txt), which the `regex` module
# does not know: Lucene makes a token of each such character.
_EXTENDED_PICTOGRAPHIC = (
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328"
    "\u2388\u23cf\u23e9-\u23f3\u23f8-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe"
    "\u2600-\u2605\u2607-\u2612\u2614-\u2685\u2690-\u2705\u2708-\u2712\u2714\u2716"
    "\u271d\u2721\u2728\u2733\u2734\u2744\u2747\u274c\u274e\u2753-\u2755\u2757"
    "\u2763-\u2767\u2795-\u2797\u27a1\u27b0\u27bf\u2934\u2935\u2b05-\u2b07\u2b1b\u2b1c"
    "\u2b50\u2b55\u3030\u303d\u3297\u3299"
    "\U0001f000-\U0001f0ff\U0001f10d-\U0001f10f\U0001f12f\U0001f16c-\U0001f171"
    "\U0001f17e\U0001f17f\U0001f18e\U0001f191-\U0001f19a\U0001f1ad-\U0001f1e5"
    "\U0001f201-\U0001f20f\U0001f21a\U0001f22f\U0001f232-\U0001f23a\U0001f23c-\U0001f23f"
    "\U0001f249-\U0001f3fa\U0001f400-\U0001f53d\U0001f546-\U0001f64f\U0001f680-\U0001f6ff"
    "\U0001f774-\U0001f77f\U0001f7d5-\U0001f7ff\U0001f80c-\U0001f80f\U0001f848-\U0001f84f"
    "\U0001f85a-\U0001f85f\U0001f888-\U0001f88f\U0001f8ae-\U0001f8ff\U0001f90c-\U0001f93a"
    "\U0001f93c-\U0001f945\U0001f947-\U0001faff\U0001fc00-\U0001fffd"
)


def _unicode_token() -> regex.Pattern[str]:
    # WB4: format, extend and ZWJ characters cling to the character before them.
    x = r"[\p{WB=Format}\p{WB=Extend}\p{WB=ZWJ}]*+"
    letter = rf"[\p{{WB=ALetter}}\p{{WB=Hebrew_Letter}}]{x}"
    hebrew = rf"\p{{WB=Hebrew_Letter}}{x}"
    # Lucene counts half- and full-width digits as numeric too.
    digit = rf"[\p{{WB=Numeric}}\uFF10-\uFF19]{x}"
    katakana = rf"\p{{WB=Katakana}}{x}"
    mid_letter = rf"[\p{{WB=MidLetter}}\p{{WB=MidNumLet}}\p{{WB=Single_Quote}}]{x}"
    mid_digit = rf"[\p{{WB=MidNum}}\p{{WB=MidNumLet}}\p{{WB=Single_Quote}}]{x}"
    extend_num = rf"\p{{WB=ExtendNumLet}}{x}"
    letters = rf"{letter}(?:(?:(?:{extend_num})*+|{mid_letter}){letter})*+"
    digits = rf"{digit}(?:(?:(?:{extend_num})*+|{mid_digit}){digit})*+"
    # WB7a-c: a Hebrew letter keeps a following ' and joins another across ".
    hebrew_quote = rf"{hebrew}(?:'{x}|\"{x}{hebrew})"
    group = (
        rf"(?:{katakana}(?:(?:{extend_num})*+{katakana})*+"
        rf"|(?:{hebrew_quote}|{letters}|{digits})++)"
    )
    word = rf"(?:{extend_num})*+{group}(?:(?:{extend_num})++{group})*+(?:{extend_num})*+"
    # UTS #51 emoji: a character (optionally presented as emoji), with a skin tone, joined
    # into a sequence by ZWJ or followed by tag characters; keycaps; flag pairs.
    extend = r"[\p{WB=Format}\p{WB=Extend}]*+"
    pictographic = f"[{_EXTENDED_PICTOGRAPHIC}]"
    emoji_char = (
        rf"(?:\p{{Emoji_Modifier_Base}}{extend}\p{{Emoji_Modifier}}"
        rf"|{pictographic}\uFE0F?|\p{{Emoji_Modifier}}){extend}"
    )
    emoji = (
        rf"\u200D*+{emoji_char}(?:[\U000E0020-\U000E007E]++\U000E007F"
        rf"|(?:\u200D++{emoji_char})*+)"
        rf"|[0-9#*]\uFE0F?\u20E3|\p{{Regional_Indicator}}{x}\p{{Regional_Indicator}}{x}"
    )
    single = rf"[\p{{Script=Han}}\p{{Script=Hiragana}}]{x}"
    south_east_asian = rf"(?:\p{{Line_Break=Complex_Context}}{x})++"
    return regex.compile(f"{word}|{emoji}|{single}|{south_east_asian}", regex.V0)


_UNICODE_TOKEN = _unicode_token()

# Lucene lower-cases one code point at a time (Java's simple case mapping); Python's
# str.lower applies the full mapping, which differs in these two: a final sigma and the
# dotted capital I (which would gain a combining dot).
_SIMPLE_LOWER = str.maketrans({"\u03a3": "\u03c3", "\u0130": "i"})


def tokens(text: str) -> list[str]:
    """The terms Elasticsearch's standard analyzer makes of `text`, in order."""
    if text.isascii():
        lowered = text.lower()
        found = _ASCII_TOKEN.findall(lowered)
        if len(text) <= MAX_TOKEN_LENGTH or max(map(len, found), default=0) <= MAX_TOKEN_LENGTH:
            return found
        return _scan(_ASCII_TOKEN, lowered)
    # Unicode lines are tokenized first: lower-casing can change a character's class.
    return [token.translate(_SIMPLE_LOWER).lower() for token in _scan(_UNICODE_TOKEN, text)]


def _scan(pattern: re.Pattern[str] | regex.Pattern[str], text: str) -> list[str]:
    found: list[str] = []
    position = 0
    length = len(text)
    while position < length:
        match = pattern.search(text, position)
        if match is None:
            break
        start, end = match.span()
        if end - start > MAX_TOKEN_LENGTH // 2:
            end = start + _fitting(text, start, end)
        found.append(text[start:end])
        position = end
    return found


def _fitting(text: str, start: int, end: int) -> int:
    """How many characters of text[start:end] fit in MAX_TOKEN_LENGTH UTF-16 units
    (a character beyond the Basic Multilingual Plane takes two, and is never split)."""
    units = 0
    for count, character in enumerate(text[start:end]):
        units += 2 if ord(character) > 0xFFFF else 1
        if units > MAX_TOKEN_LENGTH:
            return count
    return end - start


# FTS5's unicode61 tokenizer is configured (worker/sinks/sqlite.py) to split at space
# separators only, so a token stays whole; the one such character a token can hold, the
# narrow no-break space joining words like `_`, is spelt as `_` on both sides.
_FTS_SEPARATORS = str.maketrans({"\u202f": "_"})
FTS_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* M* N* P* S* C*'"


def fts_term(token: str) -> str:
    """A token (from `tokens`) as the FTS5 index holds it."""
    return token.translate(_FTS_SEPARATORS) if "\u202f" in token else token


def index_text(text: str) -> str:
    """What the SQLite FTS5 table indexes for a message: its tokens, space-separated."""
    found = tokens(text)
    return " ".join(map(fts_term, found) if "\u202f" in text else found)
