"""What the harvester makes of a set of feeds, recorded so that speed work cannot change it.

`outputs(feed)` runs the real pipeline on one feed's bytes (parse, normalise, validate, describe
each published event for the change log) and returns everything a harvest publishes or reports, as
plain data: N-Triples text for graphs, lists and dicts for the rest. The expectations in
`tests/fixtures/normalised/` were written by this module from the code as it was before the
harvest was made faster (issue #9):

    PYTHONPATH=OLD_CHECKOUT .venv/bin/python tests/harvester/normalised_outputs.py --write

`test_normalised_unchanged.py` compares the current code's outputs with them (graphs by
isomorphism).
"""

from __future__ import annotations

import gzip
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
EXPECTED = FIXTURES / "normalised"
BASE = "http://affiche.test"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)

# Full schema.org IRIs in https, IRIs the store cannot hold, script URLs, odd language tags and
# datatypes: the corners of the https rewrite and of the IRI checks.
ODD_JSONLD = {
    "@context": {"@vocab": "https://schema.org/", "ex": "https://billetterie.example/ns#"},
    "@graph": [
        {"@id": "https://cabaret-vert.example/soirees/1", "@type": "https://schema.org/MusicEvent",
         "name": {"@value": "Soirée des Ardennes", "@language": "fr-BE"},
         "startDate": "2027-04-02T21:00", "endDate": "2027-04-02T23:30:00+02:00",
         "url": "javascript:alert(1)", "image": "https://cabaret-vert.example/affiche.jpg",
         "eventStatus": "https://schema.org/EventScheduled",
         "location": {"@id": "salle relative", "@type": "Place", "name": "Le Cabaret Vert",
                      "address": {"@type": "PostalAddress", "addressLocality": "Charleville-Mézières",
                                  "addressCountry": "FR"}},
         "offers": {"@type": "Offer", "price": "12,50 €", "priceCurrency": "euros",
                    "ex:tarif": {"@value": "plein", "@type": "https://schema.org/Text"}},
         "organizer": {"@type": "Organization", "name": "Association Flap",
                       "sameAs": "https://www.wikidata.org/wiki/Q2935373"}},
        {"@id": "https://cabaret-vert.example/soirees/2", "@type": "Event",
         "name": "Late show", "description": {"@value": "Bring   your  friends", "@language": "en"},
         "startDate": "2027-04-03T00:30:00Z", "keywords": "concert, danse",
         "location": {"@type": "MusicVenue", "name": "Le Cabaret Vert",
                      "address": {"@type": "PostalAddress", "addressLocality": "Charleville-Mézières",
                                  "addressCountry": "FR"}},
         "offers": {"@type": "Offer", "price": "10-25 €"}},
        {"@type": "Event", "startDate": "pas de date", "location": "Quelque part"},
    ],
}

HTTPS_TURTLE = """@prefix s: <https://schema.org/> .
<https://grange.example/e/1> a s:TheaterEvent ; s:name "Le Malade imaginaire"@fr ;
  s:startDate "2027-05-01T20:00"^^s:DateTime ; s:endDate "2027-05-01T22:00:00"^^s:DateTime ;
  s:eventStatus s:EventRescheduled ; s:location <https://grange.example/lieu> ;
  s:offers [ a s:Offer ; s:price "gratuit" ; s:url "https://grange.example/billets" ] .
<https://grange.example/lieu> a s:Place ; s:name "Grange aux Dîmes" ;
  s:address [ a s:PostalAddress ; s:addressLocality "Wasselonne" ; s:addressCountry "FR" ] .
"""
# Terms no parser lets through but a graph can hold (rdflib does not check IRIs): built directly.
UNUSABLE = [
    ("https://grange.example/e/2", "http://www.w3.org/1999/02/22-rdf-syntax-ns#type", "iri:https://schema.org/Event"),
    ("https://grange.example/e/2", "https://schema.org/name", "lit:Tartuffe"),
    ("https://grange.example/e/2", "https://schema.org/startDate", "lit:2027-06-01T20:00"),
    ("https://grange.example/e/2", "https://schema.org/location", "iri:salle b"),
    ("salle b", "http://www.w3.org/1999/02/22-rdf-syntax-ns#type", "iri:https://schema.org/Place"),
    ("salle b", "https://schema.org/name", "lit:Salle B"),
    ("https://grange.example/e/2", "mauvaise propriété", "lit:x"),
    ("https://grange.example/e/2", "http://www.w3.org/1999/02/22-rdf-syntax-ns#type", "iri:pas un type"),
    ("https://grange.example/e/2", "https://schema.org/description", "typed:texte|pas un type"),
    ("https://grange.example/e/2", "https://schema.org/url", "iri:https://grange.example/tartuffe"),
]


@dataclass(frozen=True)
class Feed:
    name: str  # the expectation's file name
    content: bytes
    format: str  # a feed format, or "graph": UNUSABLE's triples, normalised only
    language: str = "fr"
    timezone: str = "Europe/Paris"


def unusable_graph():
    from rdflib import Graph, Literal, URIRef

    graph = Graph()
    for s, p, o in UNUSABLE:
        kind, _, value = o.partition(":")
        if kind == "iri":
            term = URIRef(value)
        elif kind == "typed":
            text, _, datatype = value.partition("|")
            term = Literal(text, datatype=URIRef(datatype))
        else:
            term = Literal(value)
        graph.add((URIRef(s), URIRef(p), term))
    return graph


def feeds() -> list[Feed]:
    """The demo's feeds, the test fixtures that need no server, odd JSON-LD and a synthetic region."""
    from bench import bench_harvest, synthetic
    from harvester.sources import load_sources
    from publisher.cli import demo_config

    out = []
    for source in load_sources(demo_config()):
        out.append(Feed(f"demo-{source.id}", source.path.read_bytes(),
                        source.format or source.path.suffix.lstrip("."), source.language,
                        source.timezone))
    for path, feed_format in (("html/contexts.html", "html"), ("html/broken-blocks.html", "html"),
                              ("html/rdfa.html", "html"), ("uitdatabank/zoekresultaat.json", "uitdatabank"),
                              ("openagenda/agenda-v3.json", "openagenda"),
                              ("csv/programme-fr-cp1252.csv", "csv"), ("csv/programme-en-bom.csv", "csv"),
                              ("csv/lignes-fautives.csv", "csv"), ("ics/saison.ics", "ics")):
        out.append(Feed(f"fixture-{path.replace('/', '-')}", (FIXTURES / path).read_bytes(), feed_format))
    out.append(Feed("odd-jsonld", json.dumps(ODD_JSONLD).encode(), "jsonld"))
    out.append(Feed("https-turtle", HTTPS_TURTLE.encode(), "rdf"))
    out.append(Feed("unusable-iris", b"", "graph"))
    for source in synthetic.plan_region(400, seed=5):
        out.append(Feed(f"synthetic-{source.id}", synthetic.WRITERS[source.format](source),
                        source.format, source.language, source.timezone))
    records = bench_harvest.records(40)
    for feed_format in ("openagenda", "uitdatabank"):
        out.append(Feed(f"synthetic-{feed_format}", bench_harvest.FEEDS[feed_format](records), feed_format))
    return out


def _nt(graph) -> str:
    return "".join(sorted(line + "\n" for line in graph.serialize(format="nt").splitlines() if line))


def outputs(feed: Feed) -> dict:
    """Everything a harvest of `feed` publishes and reports, as plain data."""
    from harvester.changes import canonical_descriptions
    from harvester.fetch import Fetched
    from harvester.formats import ParseContext, get_format
    from harvester.normalise import NormaliseContext, normalise
    from harvester.pipeline import check_bytes, event_descriptions
    from harvester.sources import Source

    if feed.format == "graph":
        normalised = normalise(unusable_graph(), NormaliseContext(
            base_url=BASE, source_id="src", language=feed.language, timezone=feed.timezone,
            harvested_at=NOW))
        return {"normalised": _nt(normalised.graph), "events": [str(e) for e in normalised.events],
                "dropped": sorted(normalised.dropped)}
    source = Source(id="src", name="Source", path=Path(f"feed.{feed.format}"), format=feed.format,
                    language=feed.language, timezone=feed.timezone)
    parsed = get_format(feed.format).parse(feed.content, ParseContext(
        source_id="src", language=feed.language, timezone=feed.timezone, now=NOW))
    normalised = normalise(parsed.graph, NormaliseContext(
        base_url=BASE, source_id="src", language=feed.language, timezone=feed.timezone,
        harvested_at=NOW), parsed.origins)
    fetched = Fetched(content=feed.content, location=f"feed.{feed.format}")
    checked = check_bytes(fetched, source, BASE, feed.format, now=NOW)
    report = checked.report.to_json()
    report.pop("finished_at")
    return {
        "normalised": _nt(normalised.graph),
        "events": [str(e) for e in normalised.events],
        "origins": {str(k): v for k, v in sorted(normalised.origins.items())},
        "dropped": sorted(normalised.dropped),
        "warnings": sorted(f"{w.event} {w.field} {w.message}" for w in normalised.warnings),
        "published": _nt(checked.published),
        "quarantined": {iri: _nt(g) for iri, g in sorted(checked.quarantined.items())},
        "report": report,
        "descriptions": canonical_descriptions(event_descriptions(checked.published, checked.report)),
    }


def expected(name: str) -> dict:
    with gzip.open(EXPECTED / f"{name}.json.gz", "rt", encoding="utf-8") as stream:
        return json.load(stream)


def write() -> None:
    EXPECTED.mkdir(parents=True, exist_ok=True)
    for feed in feeds():
        data = json.dumps(outputs(feed), ensure_ascii=False, indent=0, sort_keys=True)
        # mtime=0: the same outputs give the same bytes
        with gzip.GzipFile(EXPECTED / f"{feed.name}.json.gz", "wb", mtime=0) as stream:
            stream.write(data.encode("utf-8"))
        print(feed.name)


if __name__ == "__main__":
    sys.path.append(str(ROOT))  # after PYTHONPATH: the checkout whose outputs are recorded
    if sys.argv[1:] != ["--write"]:
        raise SystemExit(__doc__)
    write()
