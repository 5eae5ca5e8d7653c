"""Feeds written by an attacker, harvested end to end from a real server on 127.0.0.1: entity
bombs and external entities in RDF/XML and sitemaps, JSON-LD contexts that would make Affiche fetch
(remote, `file://`, `@import`, nested), a gzip bomb as a sitemap. Each is refused with a clear
report, nothing it points at is fetched or read, and published data stays as it was.
"""

from __future__ import annotations

import json
import resource
import zlib
from pathlib import Path

import pytest
from rdflib import URIRef

from harvester.fetch import FetchPolicy
from harvester.identity import graph_iri
from harvester.pipeline import harvest
from harvester.sources import Source
from sparql.store import EmbeddedStore

from ..reliability.conftest import programme, scripted_server  # noqa: F401 (a fixture)
from ..reliability.feed_server import Answer

BASE = "http://affiche.test"
POLICY = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout_s=5.0, crawl_delay_s=0.0,
                     max_bytes=1_000_000)
SECRET = Path("/etc/hostname")  # a local file an external entity or file:// context would read

LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
          + b"".join(b' <!ENTITY lol%d "%s">\n' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
                     for n in range(1, 10))
          + b"]>\n")
RDF_BOMB = LAUGHS + (b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
                     b'xmlns:schema="http://schema.org/"><schema:Event rdf:about="http://x.example/e">'
                     b"<schema:name>&lol9;</schema:name></schema:Event></rdf:RDF>")
RDF_XXE = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file://' + bytes(SECRET) + b'">]>'
           b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
           b'xmlns:schema="http://schema.org/"><schema:Event rdf:about="http://x.example/e">'
           b"<schema:name>&xxe;</schema:name></schema:Event></rdf:RDF>")
SITEMAP_BOMB = LAUGHS.replace(b"lolz", b"urlset") + (
    b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&lol9;</loc></url></urlset>')


def gzip_bomb(size: int) -> bytes:
    """`size` bytes of a sitemap-looking document, gzipped (about 1000:1), built without holding it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    chunks = [compressor.compress(head)]
    block = b" " * 1_048_576
    for _ in range(size // len(block)):
        chunks.append(compressor.compress(block))
    chunks.append(compressor.compress(b"</urlset>"))
    chunks.append(compressor.flush())
    return b"".join(chunks)


def jsonld_event(context) -> bytes:
    return json.dumps({"@context": context, "@type": "Event", "name": "Bal masqué à Lausanne",
                       "startDate": "2027-06-01T20:00:00+02:00",
                       "location": {"@type": "Place", "name": "Salle des Fêtes"}}).encode()


def published_names(store: EmbeddedStore, source_id: str) -> set[str]:
    rows = store.select("PREFIX schema: <http://schema.org/> SELECT ?g ?n WHERE { GRAPH ?g { "
                        "?e schema:startDate ?s ; schema:name ?n } }",
                        {"g": URIRef(graph_iri(BASE, source_id))})
    return {str(row["n"]) for row in rows}


@pytest.fixture
def guarded(scripted_server, tmp_path):
    """A source with ten good events already published, served by the scripted server."""
    store = EmbeddedStore(None)
    scripted_server.answers["/feed"] = Answer(body=programme(10))
    source = Source(id="attaque", name="Source piégée", url=f"{scripted_server.base}/feed", format="csv")
    assert harvest(source, store, BASE, tmp_path, POLICY).error is None
    return store, published_names(store, "attaque")


def attack(scripted_server, store, tmp_path, body: bytes, content_type: str, format_name: str):
    scripted_server.answers["/feed"] = Answer(body=body, content_type=content_type)
    source = Source(id="attaque", name="Source piégée", url=f"{scripted_server.base}/feed",
                    format=format_name)
    return harvest(source, store, BASE, tmp_path, POLICY)


XML_ATTACKS = {
    "billion laughs in RDF/XML": (RDF_BOMB, "application/rdf+xml", "rdf", "DOCTYPE or entity"),
    "external entity in RDF/XML": (RDF_XXE, "application/rdf+xml", "rdf", "DOCTYPE or entity"),
    "billion laughs in a sitemap": (SITEMAP_BOMB, "application/xml", "sitemap", "DOCTYPE or entity"),
}


@pytest.mark.parametrize("name", XML_ATTACKS, ids=list(XML_ATTACKS))
def test_xml_entity_attacks_are_refused_before_parsing(name, guarded, scripted_server, tmp_path):
    store, before = guarded
    body, content_type, format_name, reason = XML_ATTACKS[name]
    report = attack(scripted_server, store, tmp_path, body, content_type, format_name)
    assert report.error and reason in report.error, report.error
    assert "lollol" not in report.error
    assert published_names(store, "attaque") == before


def test_a_gzip_bomb_sitemap_is_refused_under_the_byte_cap(guarded, scripted_server, tmp_path):
    store, before = guarded
    bomb = gzip_bomb(300 * 1_048_576)  # 300 MB once inflated
    assert len(bomb) < POLICY.max_bytes  # the download itself passes the cap: only inflating would not
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    report = attack(scripted_server, store, tmp_path, bomb, "application/gzip", "sitemap")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert report.error and "over the limit" in report.error, report.error
    assert grown < 100_000, f"the process grew by {grown} KiB while refusing the bomb"
    assert published_names(store, "attaque") == before


def context_attacks(base: str) -> dict[str, object]:
    return {
        "remote context on the server itself": f"{base}/context.jsonld",
        "file:// context": f"file://{SECRET}",
        "relative context": "context.jsonld",
        "@import of a remote context": {"@import": f"{base}/context.jsonld"},
        "list with a remote context": ["https://schema.org", f"{base}/context.jsonld"],
        "nested scoped context": {"@vocab": "http://schema.org/",
                                  "location": {"@context": f"{base}/context.jsonld"}},
    }


@pytest.mark.parametrize("name", list(context_attacks("")), ids=list(context_attacks("")))
@pytest.mark.parametrize("wrapper", ["jsonld", "html"])
def test_jsonld_contexts_are_never_fetched_nor_read(name, wrapper, guarded, scripted_server, tmp_path):
    store, before = guarded
    scripted_server.answers["/context.jsonld"] = Answer(
        body=b'{"@context": {"name": "http://schema.org/name"}}', content_type="application/ld+json")
    body = jsonld_event(context_attacks(scripted_server.base)[name])
    if wrapper == "html":
        body = b'<html><head><script type="application/ld+json">' + body + b"</script></head></html>"
        content_type = "text/html"
    else:
        content_type = "application/ld+json"
    report = attack(scripted_server, store, tmp_path, body, content_type, wrapper)
    assert "/context.jsonld" not in scripted_server.hits  # never fetched
    secret = SECRET.read_text().strip() if SECRET.exists() else "\0"
    assert secret not in json.dumps(report.to_json())  # never read
    problems = " ".join(p.message for p in report.feed_problems) + (report.error or "")
    assert "context" in problems.lower(), report.to_json()
    assert published_names(store, "attaque") == before  # refused: no event, so the last good data stays


def test_the_schema_org_context_written_as_usual_is_still_read(guarded, scripted_server, tmp_path):
    """The good case beside the bad ones: a pinned context is read (without fetching it)."""
    store, _ = guarded
    report = attack(scripted_server, store, tmp_path, jsonld_event("https://schema.org/"),
                    "application/ld+json", "jsonld")
    assert report.summary["found"] == 1
    assert scripted_server.hits == ["/feed", "/feed"]
