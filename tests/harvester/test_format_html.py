"""Web pages and JSON-LD files: every way organisers write schema.org, read without the network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdflib import RDF, URIRef

from harvester.formats import ParseContext, ParseError, get_format
from harvester.formats._events import event_nodes
from harvester.formats.jsonld import RemoteContextError, is_schema_context, pin_contexts
from ontology import SCHEMA

FIXTURES = Path(__file__).parent.parent / "fixtures" / "html"
CONTEXT = ParseContext(source_id="t", base_url="https://ex.example/agenda")


def parse_html(name: str):
    return get_format("html").parse((FIXTURES / name).read_bytes(), CONTEXT)


def names(graph) -> set[str]:
    return {str(graph.value(node, SCHEMA.name) or graph.value(node, URIRef("https://schema.org/name")))
            for node in event_nodes(graph)}


def test_every_way_of_writing_the_schema_org_context_is_read():
    parsed = parse_html("contexts.html")
    assert parsed.problems == []
    assert names(parsed.graph) == {"A", "B", "C", "D", "E", "F", "G (no context)", "H", "I"}


@pytest.mark.parametrize("value", [
    "https://schema.org", "http://schema.org/", "schema.org", "//schema.org",
    "https://www.schema.org/", "https://schema.org/docs/jsonldcontext.json",
])
def test_schema_context_names_are_recognised(value):
    assert is_schema_context(value)


@pytest.mark.parametrize("value", ["https://schema.org.evil.example/", "https://evil.example/schema.org"])
def test_lookalike_contexts_are_not_schema_org(value):
    assert not is_schema_context(value)


def test_remote_contexts_are_refused_not_fetched():
    with pytest.raises(RemoteContextError):
        pin_contexts({"@context": "https://evil.example/ctx.jsonld", "name": "x"})
    with pytest.raises(RemoteContextError):
        pin_contexts({"@context": {"@import": "https://evil.example/ctx.jsonld"}})


def test_a_broken_block_is_reported_with_its_line_and_the_others_still_count():
    parsed = parse_html("broken-blocks.html")
    assert names(parsed.graph) == {"The Lighthouse Keeper"}
    wheres = sorted(problem.where for problem in parsed.problems)
    assert wheres == ["JSON-LD block 2 (line 8)", "JSON-LD block 3 (line 11)"]
    remote = next(p for p in parsed.problems if p.where.startswith("JSON-LD block 3"))
    assert remote.field == "@context" and "evil.example" in remote.message


def test_rdfa_is_read():
    parsed = parse_html("rdfa.html")
    events = event_nodes(parsed.graph)
    assert [str(e) for e in events] == ["https://rire.example/spectacles/nuit-du-rire"]
    assert (events[0], RDF.type, URIRef("https://schema.org/ComedyEvent")) in parsed.graph


def test_microdata_is_read_from_the_demo_page():
    page = Path(__file__).parents[2] / "publisher" / "demo" / "theatre-lumiere.html"
    parsed = get_format("html").parse(page.read_bytes(), CONTEXT)
    assert "Jazz au foyer : Trio Nocturne" in names(parsed.graph)
    jazz = URIRef("https://theatre-lumiere.example/saison/jazz-au-foyer")
    assert parsed.origins[jazz] == "microdata/RDFa"


def test_jsonld_file_with_a_list_of_documents():
    documents = [
        {"@context": "https://schema.org", "@type": "Event", "name": "Un", "startDate": "2027-01-01"},
        {"@context": "https://schema.org", "@type": "Event", "name": "Deux", "startDate": "2027-01-02"},
    ]
    parsed = get_format("jsonld").parse(json.dumps(documents).encode(), CONTEXT)
    assert names(parsed.graph) == {"Un", "Deux"}


def test_jsonld_file_that_is_not_json_names_line_and_column():
    with pytest.raises(ParseError, match=r"line 2, column"):
        get_format("jsonld").parse(b'{"@context": "https://schema.org",\n "name": }', CONTEXT)


def test_rdf_xml_with_entities_is_refused():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]>'
            b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"></rdf:RDF>')
    with pytest.raises(ParseError, match="DOCTYPE"):
        get_format("rdf").parse(bomb, CONTEXT)


def test_turtle_feed():
    turtle = b"""@prefix schema: <https://schema.org/> .
    <https://ex.example/t> a schema:Event ; schema:name "Turtle event" ; schema:startDate "2027-02-02" ."""
    parsed = get_format("rdf").parse(turtle, CONTEXT)
    assert names(parsed.graph) == {"Turtle event"}
