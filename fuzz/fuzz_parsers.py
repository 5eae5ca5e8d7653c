"""Coverage-guided fuzzing (atheris, libFuzzer) of every feed parser and of the normaliser.

    .venv/bin/python fuzz/fuzz_parsers.py TARGET [--runs N] [--seconds S] [--max-len BYTES]
                                         [--corpus DIR] [--artifacts DIR] [INPUT …]
    .venv/bin/python fuzz/fuzz_parsers.py --list

TARGET is a format (html, jsonld, ics, csv, rdf, openagenda, uitdatabank, sitemap) or `normalise`
(one of the formats picked by the first byte, then the normaliser, then a load into an in-memory
store). Each run starts from seeds written into the corpus directory: the project's own invented
fixtures and a few invented snippets below. Any input that ends in something other than a result
or a precise `ParseError` (or, for sitemaps, `CrawlError`) is a crash: libFuzzer writes it under
the artifacts directory and the script exits non-zero. A single input taking more than
`--timeout` seconds is a hang, and a process over `--rss-limit-mb` an unbounded allocation: both
are crashes too. Given INPUT files, the script runs those inputs once each instead of fuzzing (to
replay a crash).

Only the project's harvester modules are instrumented (what the fuzzer tries to cover); the
libraries they call run as they are. Nothing here touches the network: crawling a sitemap is not
fuzzed, reading one is.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime, timezone
from hashlib import sha1
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["harvester"]):
    from harvester.crawl import CrawlError, read_sitemap
    from harvester.fetch import FetchPolicy
    from harvester.formats import ParseContext, ParseError, Parsed, formats
    from harvester.normalise import NormaliseContext, normalise

    FORMATS = formats()  # the format modules are imported here, so they are instrumented too

from sparql.store import EmbeddedStore  # noqa: E402

PARSERS = ("html", "jsonld", "ics", "csv", "rdf", "openagenda", "uitdatabank")
TARGETS = (*PARSERS, "sitemap", "normalise")
# A small event cap, so that a feed expanding into thousands of occurrences is refused quickly
# (the default cap of 50,000 is honoured as well, only more slowly).
CONTEXT = ParseContext(source_id="fuzz", now=datetime(2027, 1, 1, tzinfo=timezone.utc),
                       base_url="https://hirondelles.example/agenda",
                       fetch_policy=FetchPolicy(max_events=2000))
NORMALISE = NormaliseContext(base_url="http://affiche.test", source_id="fuzz")
SITEMAP_MAX_BYTES = 1 << 20  # a gzip sitemap inflating past this is refused, as in a harvest

FIXTURES = {
    "html": ["tests/fixtures/html/*.html", "publisher/demo/*.html", "tests/fixtures/sites/*/*.html"],
    "ics": ["tests/fixtures/ics/*.ics", "publisher/demo/*.ics"],
    "csv": ["tests/fixtures/csv/*.csv", "publisher/demo/*.csv"],
    "openagenda": ["tests/fixtures/openagenda/*.json"],
    "uitdatabank": ["tests/fixtures/uitdatabank/*.json"],
    "sitemap": ["tests/fixtures/sites/*/*.xml"],
}
SNIPPETS = {
    "jsonld": [
        json.dumps({"@context": "https://schema.org", "@type": "Event", "name": "Les Oiseaux de nuit",
                    "startDate": "2027-03-12T20:30", "location": {"@type": "Place", "name": "Salle Pleyel-sur-Meuse",
                    "address": {"@type": "PostalAddress", "addressLocality": "Dinant"}},
                    "offers": {"@type": "Offer", "price": "12,50", "priceCurrency": "EUR"}}).encode(),
        json.dumps({"@context": {"@vocab": "http://schema.org/"}, "@graph": [
            {"@id": "_:e", "@type": "MusicEvent", "name": {"@value": "Hiver", "@language": "fr-BE"},
             "startDate": "2027-01-05", "subEvent": {"@type": "Event", "name": "Printemps"}}]}).encode(),
    ],
    "rdf": [
        b"@prefix schema: <http://schema.org/> .\n<https://erable.example/e/1> a schema:Event ;\n"
        b"  schema:name \"Soir\xc3\xa9e contes\"@fr ; schema:startDate \"2027-02-01T19:00\" .\n",
        b"<?xml version=\"1.0\"?><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" "
        b"xmlns:s=\"http://schema.org/\"><s:Event rdf:about=\"https://erable.example/e/2\">"
        b"<s:name>Bal folk</s:name></s:Event></rdf:RDF>",
        b"<https://erable.example/e/3> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
        b"<http://schema.org/Event> .\n",
    ],
    "sitemap": [
        b"<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">"
        b"<url><loc>https://hirondelles.example/spectacle/1</loc></url></urlset>",
        b"<sitemapindex><sitemap><loc>https://hirondelles.example/s.xml</loc></sitemap></sitemapindex>",
    ],
}


def seeds(target: str) -> list[bytes]:
    """The starting corpus of a target: fixtures of the project and invented snippets."""
    if target == "normalise":  # a format's index byte, then one of its seeds
        return [bytes([index]) + seed for index, name in enumerate(PARSERS) for seed in seeds(name)]
    found = [path.read_bytes() for pattern in FIXTURES.get(target, [])
             for path in sorted(ROOT.glob(pattern))]
    return found + SNIPPETS.get(target, [])


def parse_or_refuse(name: str, data: bytes) -> Parsed | None:
    """A parser's result, or None when it refused the feed with a precise error."""
    try:
        result = FORMATS[name].parse(data, CONTEXT)
    except ParseError as exc:
        if not str(exc):
            raise AssertionError(f"{name}: a ParseError without a message") from exc
        return None
    if not isinstance(result, Parsed):
        raise AssertionError(f"{name}: the parser returned {type(result).__name__}, not Parsed")
    return result


def one_sitemap(data: bytes) -> None:
    try:
        pages, nested = read_sitemap(data, "fuzz/sitemap.xml", SITEMAP_MAX_BYTES)
    except CrawlError as exc:
        if not str(exc):
            raise AssertionError("a CrawlError without a message") from exc
        return
    if not all(isinstance(url, str) and url for url in [*pages, *nested]):
        raise AssertionError("a sitemap location that is not a non-empty string")


def one_normalise(data: bytes) -> None:
    """Parse with the format the first byte names, normalise, and load into a store."""
    if not data:
        return
    parsed = parse_or_refuse(PARSERS[data[0] % len(PARSERS)], data[1:])
    if parsed is None:
        return
    normalised = normalise(parsed.graph, NORMALISE, parsed.origins)
    EmbeddedStore(None).replace_graph("http://affiche.test/graph/fuzz", normalised.graph)


def test_one_input(target: str):
    if target == "sitemap":
        return one_sitemap
    if target == "normalise":
        return one_normalise
    return lambda data: parse_or_refuse(target, data)


def write_corpus(target: str, directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for seed in seeds(target):
        path = directory / sha1(seed).hexdigest()
        if not path.exists():
            path.write_bytes(seed)
            written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", nargs="?", choices=TARGETS)
    parser.add_argument("inputs", nargs="*", type=Path, help="replay these inputs instead of fuzzing")
    parser.add_argument("--list", action="store_true", help="print the targets and exit")
    parser.add_argument("--runs", type=int, default=-1, help="inputs to try (-1: until --seconds)")
    parser.add_argument("--seconds", type=int, default=60, help="fuzz for at most this long")
    parser.add_argument("--max-len", type=int, default=4096, help="longest input tried, in bytes")
    parser.add_argument("--timeout", type=int, default=20, help="seconds one input may take")
    parser.add_argument("--rss-limit-mb", type=int, default=2048, help="memory the process may use")
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer's random seed (0: random)")
    parser.add_argument("--corpus", type=Path, help="corpus directory, kept (default: a new "
                        "temporary one, left for the next run to start from)")
    parser.add_argument("--artifacts", type=Path, default=Path("."), help="where crashing inputs go")
    args = parser.parse_args()
    if args.list or not args.target:
        print("\n".join(TARGETS))
        return
    flags = [f"-timeout={args.timeout}", f"-rss_limit_mb={args.rss_limit_mb}",
             f"-artifact_prefix={args.artifacts.resolve()}/{args.target}-", "-print_final_stats=1"]
    if args.inputs:
        libfuzzer_args = [sys.argv[0], *flags, *map(str, args.inputs)]
    else:
        corpus = args.corpus or Path(tempfile.mkdtemp(prefix=f"affiche-fuzz-{args.target}-"))
        print(f"corpus {corpus}: {write_corpus(args.target, corpus)} seeds added", flush=True)
        libfuzzer_args = [sys.argv[0], *flags, f"-runs={args.runs}", f"-max_total_time={args.seconds}",
                          f"-max_len={args.max_len}", f"-seed={args.seed}", str(corpus)]
    atheris.Setup(libfuzzer_args, test_one_input(args.target))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
