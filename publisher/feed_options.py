"""The options a feed is read with (format, language, time zone), checked the same way wherever a
person gives them: the public checker and the organiser API."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from harvester.formats import formats
from shapes import LANGUAGES
from sparql.errors import BadRequest


def check_feed_options(format_name: str | None, language: str, timezone: str) -> None:
    """Raise BadRequest naming the option that is wrong and what would be right."""
    if format_name is not None and format_name not in formats():
        raise BadRequest(f"unknown format {format_name!r}; use one of: {', '.join(sorted(formats()))}")
    if language not in LANGUAGES:
        raise BadRequest(f"language must be one of: {', '.join(LANGUAGES)}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadRequest(f"unknown time zone {timezone!r}; use an IANA name such as "
                         "Europe/Paris or America/Montreal") from exc
