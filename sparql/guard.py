"""The checks a public query passes before it reaches the store.

The endpoint is left open to anyone, so it must refuse what would change data (SPARQL Update) or
make the server fetch from the network on a stranger's behalf (`SERVICE`). Keywords are found on
a token stream that skips comments, string literals, IRIs, variables and prefixed names, so that
`"please DELETE me"`, `<http://x/service>` or `?delete` are not mistaken for operations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from .errors import BadQuery, Forbidden, PayloadTooLarge

QUERY_KINDS = ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE")
UPDATE_KEYWORDS = frozenset(
    {"INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH"}
)
PROLOGUE_KEYWORDS = frozenset({"BASE", "PREFIX"})


@dataclass(frozen=True)
class SparqlLimits:
    """What the public endpoint allows. The defaults here suit tests (no rate limit); the app
    takes its values from the settings. `timeout_s` is enforced by whatever runs the query
    (`sparql.workers.QueryWorkers`, or the remote store's HTTP timeout)."""

    max_query_length: int = 20_000
    max_rows: int = 10_000
    timeout_s: float = 20.0
    max_concurrent: int = 4
    rate_per_minute: int = 0
    # Proxies (addresses or networks) whose X-Forwarded-For names the client the rate applies to.
    trusted_proxies: tuple[str, ...] = ()


# Order matters: the first alternative that matches at a position wins. Everything that can hide
# a keyword-looking word (comments, strings, IRIs, variables, prefixed names, language tags) is
# consumed whole; only the `word` group yields keywords. A character that starts none of them
# (an operator, a stray character) is skipped alone. A quote that opens no complete string is
# refused at once: outside strings, IRIs and comments a quote is always a syntax error, and
# scanning on from it would be quadratic on hostile input.
_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>\#[^\r\n]*)
    | (?P<long_string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\")
    | (?P<string>'(?:[^'\\\r\n]|\\.)*'|"(?:[^"\\\r\n]|\\.)*")
    | (?P<open_quote>['"])
    | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
    | (?P<variable>[?$]\w+)
    | (?P<prefixed>(?:[^\W\d][\w.\-]*)?:(?:[\w.\-:%]|\\.)*)
    | (?P<langtag>@[A-Za-z]+(?:-[A-Za-z0-9]+)*)
    | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
    | (?P<word>[^\W\d]\w*)
    """,
    re.VERBOSE | re.DOTALL,
)


def tokens(text: str) -> Iterator[tuple[str, int, int]]:
    """The query's tokens as (kind, start, end); a stray character is its own `other` token."""
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            yield "other", position, position + 1
            position += 1
            continue
        if match.lastgroup == "open_quote":
            raise BadQuery(f"unterminated string literal at {_line_column(text, position)}")
        yield match.lastgroup, position, match.end()
        position = match.end()


def keywords(text: str) -> Iterator[str]:
    """The bare words of a query, upper-cased, in order: its keywords and function names."""
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            position += 1
            continue
        if match.lastgroup == "open_quote":
            raise BadQuery(f"unterminated string literal at {_line_column(text, position)}")
        if match.lastgroup == "word":
            yield match.group().upper()
        position = match.end()


def _line_column(text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"{line}:{column}"


def check_query(text: str, limits: SparqlLimits) -> str:
    """The query's kind (SELECT, ASK, CONSTRUCT, DESCRIBE), or the HTTP problem that refuses it."""
    if len(text) > limits.max_query_length:
        raise PayloadTooLarge(
            f"the query is {len(text)} characters long; this endpoint accepts at most "
            f"{limits.max_query_length}"
        )
    kind = None
    for word in keywords(text):
        _refuse_forbidden(word)
        if kind is None and word not in PROLOGUE_KEYWORDS:
            kind = word
    if kind is None:
        raise BadQuery("the query is empty: it has no SELECT, ASK, CONSTRUCT or DESCRIBE")
    if kind not in QUERY_KINDS:
        raise BadQuery(f"a query starts with SELECT, ASK, CONSTRUCT or DESCRIBE, not {kind}")
    return kind


def _refuse_forbidden(word: str) -> None:
    if word in UPDATE_KEYWORDS:
        raise Forbidden(f"{word} is a SPARQL Update operation; this endpoint is read-only")
    if word == "SERVICE":
        raise Forbidden(
            "SERVICE (federated query) is not allowed: this endpoint does not query other servers"
        )
