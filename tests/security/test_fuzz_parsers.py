"""Every parser, fed anything, ends in a result or a precise ParseError: never a crash."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from harvester.formats import ParseContext, ParseError, Parsed, formats
from harvester.normalise import NormaliseContext, normalise

CONTEXT = ParseContext(source_id="fuzz", now=datetime(2027, 1, 1, tzinfo=timezone.utc))
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_safely(name: str, content: bytes):
    try:
        result = formats()[name].parse(content, CONTEXT)
    except ParseError as exc:
        assert str(exc)  # a precise error says something
        return None
    assert isinstance(result, Parsed)
    return result


@pytest.mark.parametrize("name", sorted(formats()))
@FUZZ
@given(content=st.binary(max_size=2048))
def test_arbitrary_bytes(name, content):
    parse_safely(name, content)


HEADS = {
    "ics": b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\n",
    "csv": "titre;début;lieu\r\n".encode(),
    "html": b"<!DOCTYPE html><html><head><script type=\"application/ld+json\">",
    "jsonld": b'{"@context": "https://schema.org", "@type": "Event", ',
    "rdf": b"@prefix schema: <http://schema.org/> .\n",
}


@pytest.mark.parametrize("name", sorted(HEADS))
@FUZZ
@given(tail=st.binary(max_size=1024) | st.text(max_size=1024).map(lambda t: t.encode("utf-8")))
def test_plausible_starts_with_garbage_after(name, tail):
    parse_safely(name, HEADS.get(name, b"") + tail)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["@type", "@id", "name", "startDate", "location", "offers", "price",
                         "address", "url", "eventStatus", "@value", "@language", "subEvent"]),
        children, max_size=5),
    max_leaves=20,
)


@FUZZ
@given(document=json_values)
def test_jsonld_shapes_then_normalise(document):
    wrapped = {"@context": "https://schema.org", "@type": "Event", "name": "x", "extra": document}
    parsed = parse_safely("jsonld", json.dumps(wrapped).encode())
    if parsed is not None:
        normalise(parsed.graph, NormaliseContext(base_url="http://affiche.test", source_id="fuzz"))


@pytest.mark.parametrize("date", ["0000-01-01", "9999-12-31T23:59:59", "-0001-01-01", "2027-13-45",
                                  "2027-02-29T25:61", "1" * 500, "2027-03-12T20:30+99:00"])
def test_extreme_dates_do_not_crash(date):
    document = {"@context": "https://schema.org", "@type": "Event", "name": "x", "startDate": date}
    parsed = parse_safely("jsonld", json.dumps(document).encode())
    normalise(parsed.graph, NormaliseContext(base_url="http://affiche.test", source_id="fuzz"))


@pytest.mark.parametrize("depth", [50, 5000, 100_000])
def test_deep_nesting_is_refused_or_read_not_crashed(depth):
    text = '{"@context": "https://schema.org", "@type": "Event", "name": "x", "subEvent": ' + (
        '{"@type": "Event", "subEvent": ' * depth) + '{"name": "leaf"}' + "}" * (depth + 1)
    parse_safely("jsonld", text.encode())
    parse_safely("html", f'<html><script type="application/ld+json">{text}</script></html>'.encode())
    for name in ("openagenda", "uitdatabank"):  # JSON formats of their own
        parse_safely(name, text.encode())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=json_values, name=st.text(max_size=40), language=st.text(max_size=12))
def test_whatever_a_feed_holds_the_store_accepts_what_is_published(document, name, language):
    from harvester.fetch import Fetched
    from harvester.pipeline import check_bytes
    from harvester.sources import Source
    from sparql.store import EmbeddedStore

    feed = {"@context": "https://schema.org", "@type": "Event",
            "name": {"@value": name, "@language": language} if language else name,
            "startDate": "2027-05-01T20:00", "extra": document,
            "location": {"@type": "Place", "name": "Salle", "address": "1 rue X, Lille"}}
    fetched = Fetched(content=json.dumps(feed).encode(), location="feed.jsonld")
    try:
        checked = check_bytes(fetched, Source(id="fuzz", name="F", path=None), "http://affiche.test")
    except ParseError:
        return
    EmbeddedStore(None).replace_graph("http://affiche.test/graph/fuzz", checked.published)
