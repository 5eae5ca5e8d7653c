"""Harvest speed per feed format: events per second to parse, and to parse and normalise.

    .venv/bin/python bench/bench_harvest.py [--events 2000] [--repeat 1] [--no-rdflib]

Generates the same N synthetic events (shared venues, prices, categories) as a feed in every
format Affiche reads — HTML with JSON-LD, JSON-LD, iCalendar, CSV, Turtle, OpenAgenda v3 JSON,
UiTdatabank JSON-LD — then times `parse` and `parse + normalise` on each (best of `--repeat`),
and checks that every format yields N events. The baseline is JSON-LD measured in the same run:
the ratio column says how much slower or faster each format is than it on this machine, which is
what stays comparable from one machine to another.

The formats pyoxigraph reads (HTML's JSON-LD blocks, JSON-LD, Turtle) are timed a second time
with every document read by rdflib, as before issue #9's parsing work (the parsers' own fallback
path: slightly dearer than the old code, which did not rename blank nodes); the last column is
the same-run speed-up of parsing. `--no-rdflib` skips that second timing.
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import json
import sys
import os
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harvester.formats import ParseContext, get_format  # noqa: E402
from harvester.formats import jsonld, rdf  # noqa: E402
from harvester.formats._events import event_nodes  # noqa: E402
from harvester.formats._oxigraph import DiffersFromRdflib  # noqa: E402
from harvester.normalise import NormaliseContext, normalise  # noqa: E402

BASE = "http://bench.affiche.test"
START = datetime(2027, 3, 1, 20, 0)
TOWNS = [("Lyon", "69001", "FR"), ("Liège", "4000", "BE"), ("Québec", "G1R 4P5", "CA"),
         ("Nantes", "44000", "FR"), ("Namur", "5000", "BE")]
CATEGORIES = ["théâtre", "danse", "concert", "cirque", "exposition"]
NOW = datetime(2027, 2, 1, tzinfo=timezone.utc)


def records(count: int) -> list[dict]:
    out = []
    for i in range(count):
        town, postal, country = TOWNS[i % len(TOWNS)]
        start = START + timedelta(days=i % 365, minutes=30 * (i % 4))
        out.append({
            "id": f"bench-{i}", "name": f"Spectacle n° {i}", "description": f"Description du spectacle {i}.",
            "start": start, "end": start + timedelta(hours=2), "venue": f"Salle {i % 60}",
            "street": f"{i % 60} rue des Arts", "town": town, "postal": postal, "country": country,
            "price": f"{10 + i % 20}", "category": CATEGORIES[i % len(CATEGORIES)],
        })
    return out


def schema_event(r: dict) -> dict:
    return {
        "@type": "Event", "identifier": r["id"], "name": r["name"], "description": r["description"],
        "startDate": r["start"].isoformat(), "endDate": r["end"].isoformat(), "keywords": r["category"],
        "location": {"@type": "Place", "name": r["venue"], "address": {
            "@type": "PostalAddress", "streetAddress": r["street"], "addressLocality": r["town"],
            "postalCode": r["postal"], "addressCountry": r["country"]}},
        "offers": {"@type": "Offer", "price": r["price"], "priceCurrency": "EUR"},
    }


def as_jsonld(rs: list[dict]) -> bytes:
    return json.dumps({"@context": "https://schema.org", "@graph": [schema_event(r) for r in rs]}).encode()


def as_html(rs: list[dict]) -> bytes:
    blocks = "\n".join(
        '<script type="application/ld+json">' + json.dumps({"@context": "https://schema.org", **schema_event(r)})
        + "</script>" for r in rs)
    return f"<!doctype html><html><head><title>Agenda</title>{blocks}</head><body></body></html>".encode()


def as_ics(rs: list[dict]) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//affiche//FR"]
    for r in rs:
        lines += ["BEGIN:VEVENT", f"UID:{r['id']}@bench", f"SUMMARY:{r['name']}",
                  f"DESCRIPTION:{r['description']}",
                  f"DTSTART;TZID=Europe/Paris:{r['start']:%Y%m%dT%H%M%S}",
                  f"DTEND;TZID=Europe/Paris:{r['end']:%Y%m%dT%H%M%S}",
                  f"LOCATION:{r['venue']}\\, {r['street']}\\, {r['postal']} {r['town']}",
                  f"CATEGORIES:{r['category']}", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines).encode()


def as_csv(rs: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(["id", "titre", "description", "debut", "fin", "lieu", "adresse", "code_postal",
                     "ville", "pays", "prix", "categorie"])
    for r in rs:
        writer.writerow([r["id"], r["name"], r["description"], f"{r['start']:%d/%m/%Y %Hh%M}",
                         f"{r['end']:%d/%m/%Y %Hh%M}", r["venue"], r["street"], r["postal"], r["town"],
                         r["country"], f"{r['price']} €", r["category"]])
    return buffer.getvalue().encode()


def as_turtle(rs: list[dict]) -> bytes:
    out = ["@prefix schema: <http://schema.org/> .", "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> ."]
    for i, r in enumerate(rs):
        out.append(
            f'<{BASE}/src/e{i}> a schema:Event ; schema:identifier "{r["id"]}" ; schema:name "{r["name"]}" ;'
            f' schema:startDate "{r["start"].isoformat()}" ; schema:endDate "{r["end"].isoformat()}" ;'
            f' schema:keywords "{r["category"]}" ;'
            f' schema:location [ a schema:Place ; schema:name "{r["venue"]}" ; schema:address [ a schema:PostalAddress ;'
            f' schema:streetAddress "{r["street"]}" ; schema:addressLocality "{r["town"]}" ;'
            f' schema:addressCountry "{r["country"]}" ] ] ;'
            f' schema:offers [ a schema:Offer ; schema:price "{r["price"]}"^^xsd:decimal ; schema:priceCurrency "EUR" ] .')
    return "\n".join(out).encode()


def as_openagenda(rs: list[dict]) -> bytes:
    events = [{
        "uid": 1_000_000 + i, "slug": f"spectacle-{i}", "state": 2, "status": 1, "attendanceMode": 1,
        "title": {"fr": r["name"]}, "description": {"fr": r["description"]},
        "keywords": {"fr": [r["category"]]},
        "timings": [{"begin": r["start"].isoformat() + "+01:00", "end": r["end"].isoformat() + "+01:00"}],
        "location": {"uid": i % 60, "name": r["venue"], "address": r["street"], "postalCode": r["postal"],
                     "city": r["town"], "countryCode": r["country"]},
        "conditions": {"fr": f"{r['price']} €"},
    } for i, r in enumerate(rs)]
    return json.dumps({"data": events, "pagination": {"total": len(events)}}).encode()


def as_uitdatabank(rs: list[dict]) -> bytes:
    members = [{
        "@id": f"https://io.uitdatabank.example/event/{i:08d}-0000-4000-8000-000000000000",
        "@context": "/contexts/event", "mainLanguage": "nl", "calendarType": "single",
        "name": {"nl": r["name"]}, "description": {"nl": r["description"]},
        "startDate": r["start"].isoformat() + "+01:00", "endDate": r["end"].isoformat() + "+01:00",
        "terms": [{"id": "0.55.0.0.0", "label": "Theatervoorstelling", "domain": "eventtype"}],
        "location": {"@id": f"https://io.uitdatabank.example/place/{i % 60}", "name": {"nl": r["venue"]},
                     "address": {"nl": {"streetAddress": r["street"], "addressLocality": r["town"],
                                        "postalCode": r["postal"], "addressCountry": r["country"]}}},
        "priceInfo": [{"category": "base", "price": float(r["price"]), "priceCurrency": "EUR"}],
        "workflowStatus": "APPROVED",
    } for i, r in enumerate(rs)]
    return json.dumps({"@type": "PagedCollection", "member": members}).encode()


FEEDS = {
    "jsonld": as_jsonld, "html": as_html, "ics": as_ics, "csv": as_csv, "rdf": as_turtle,
    "openagenda": as_openagenda, "uitdatabank": as_uitdatabank,
}


def best_of(repeat: int, work) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        result = None  # not kept alive (and scanned by the collector) while the next one is timed
        gc.collect()
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


OXIGRAPH_READ = ("jsonld", "html", "rdf")


@contextmanager
def rdflib_only():
    """Every JSON-LD document and RDF file read by rdflib (the parsers' fallback path)."""
    def refuse(*_args, **_kwargs):
        raise DiffersFromRdflib("bench: rdflib only")

    saved = jsonld.to_triples, rdf._read_with_oxigraph
    jsonld.to_triples, rdf._read_with_oxigraph = refuse, refuse
    try:
        yield
    finally:
        jsonld.to_triples, rdf._read_with_oxigraph = saved


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--events", type=int, default=2000)
    arguments.add_argument("--repeat", type=int, default=1)
    arguments.add_argument("--no-rdflib", action="store_true",
                           help="do not time the rdflib-only reading of the pyoxigraph formats")
    options = arguments.parse_args()
    rs = records(options.events)
    context = ParseContext(source_id="bench", now=NOW, recurrence_days=400)
    normalise_context = NormaliseContext(base_url=BASE, source_id="bench", harvested_at=NOW)
    rows, failures = [], []
    for name, build in FEEDS.items():
        content = build(rs)
        feed_format = get_format(name)
        parse_s, parsed = best_of(options.repeat, lambda: feed_format.parse(content, context))
        found, triples = len(event_nodes(parsed.triples)), len(parsed.triples)
        parsed = None
        if found != options.events:
            failures.append(f"{name}: {found} events instead of {options.events}")
        total_s, _ = best_of(options.repeat, lambda: normalise(
            feed_format.parse(content, context).triples, normalise_context, {}))
        rdflib_eps = None
        if name in OXIGRAPH_READ and not options.no_rdflib:
            with rdflib_only():
                rdflib_s, old = best_of(options.repeat, lambda: feed_format.parse(content, context))
            if len(old.triples) != triples or len(event_nodes(old.triples)) != found:
                failures.append(f"{name}: {len(old.triples)} triples read by rdflib, {triples} now")
            old = None
            rdflib_eps = options.events / rdflib_s
        rows.append((name, len(content), triples, found, options.events / parse_s,
                     options.events / total_s, rdflib_eps))
    baseline = next(row for row in rows if row[0] == "jsonld")
    print(f"{options.events} synthetic events per feed, best of {options.repeat}; baseline: jsonld; "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print(f"{'format':<12} {'bytes':>10} {'triples':>9} {'events':>7} {'parse ev/s':>11} "
          f"{'+normalise ev/s':>16} {'ratio to jsonld':>16} {'rdflib parse ev/s':>18} {'parse speed-up':>15}")
    for name, size, triples, found, parse_eps, total_eps, rdflib_eps in rows:
        old = f"{rdflib_eps:>18.0f} {parse_eps / rdflib_eps:>14.1f}x" if rdflib_eps else f"{'':>18} {'':>15}"
        print(f"{name:<12} {size:>10} {triples:>9} {found:>7} {parse_eps:>11.0f} {total_eps:>16.0f} "
              f"{total_eps / baseline[5]:>16.2f} {old}")
    for failure in failures:
        print(f"CHECK FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
