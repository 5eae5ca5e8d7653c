"""Synthetic listings of a region at any size, written as the feeds Affiche harvests.

    .venv/bin/python -m bench.synthetic --events 10000 --out /tmp/region

A region is many sources (a theatre's HTML pages, a festival's iCalendar, a town's CSV export, a
network's JSON-LD, an aggregator's Turtle), of uneven sizes, whose events take place in venues
shared between sources (the same name and town, so that identity matching merges them), in French
or English, with offers (some free, some price ranges), iCalendar recurrences (weekly series
counted as their occurrences) and about 2 % invalid events (no name, an end before the start)
that validation must quarantine. Everything is invented and deterministic (`seed`).

`write_region` writes one file per source and a `sources.toml` declaring them; `change_events`
rewrites a share of the events (new titles) in place, as a re-harvest would find them;
`region_nquads` gives a store's worth of already-normalised events as N-Quads (bench_pages'
generator), to load a large store directly when harvesting it would take too long.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

FORMATS = ("html", "jsonld", "ics", "csv", "rdf")
EXTENSIONS = {"html": ".html", "jsonld": ".jsonld", "ics": ".ics", "csv": ".csv", "rdf": ".ttl"}
# (town, postal code, country, IANA zone, language of its sources)
TOWNS = [("Lyon", "69002", "FR", "Europe/Paris", "fr"), ("Liège", "4000", "BE", "Europe/Brussels", "fr"),
         ("Montréal", "H2X 1Y4", "CA", "America/Toronto", "en"), ("Nantes", "44000", "FR", "Europe/Paris", "fr"),
         ("Québec", "G1R 4P5", "CA", "America/Toronto", "fr"), ("Namur", "5000", "BE", "Europe/Brussels", "fr"),
         ("Saint-Malo", "35400", "FR", "Europe/Paris", "fr"), ("Gand", "9000", "BE", "Europe/Brussels", "en")]
VENUE_KINDS = ["Théâtre", "Salle", "Espace culturel", "Auditorium", "Grange", "Chapiteau"]
VENUE_NAMES = ["de la Lumière", "des Marées", "de l'Érable", "du Port", "des Tilleuls", "Saint-Roch",
               "du Vieux Moulin", "des Carmes", "de la Citadelle", "Bellevue"]
KINDS_FR = ["théâtre", "danse", "concert", "cirque", "marionnettes", "conte"]
KINDS_EN = ["theatre", "dance", "concert", "circus", "puppetry", "storytelling"]
TITLES_FR = ["Les Nuits de {}", "Le Bal de {}", "Chroniques de {}", "Un hiver à {}", "La Traversée de {}"]
TITLES_EN = ["Nights in {}", "The {} Ball", "Tales from {}", "Winter in {}", "Crossing {}"]
FIRST_DAY = datetime(2027, 1, 4, 20, 0)  # harvests expand recurrences from "now": keep dates ahead


@dataclass
class Venue:
    name: str
    street: str
    town: str
    postal: str
    country: str
    zone: str
    language: str


@dataclass
class Record:
    id: str
    name: str | None  # None: invalid (no name)
    description: str
    start: datetime
    end: datetime
    venue: Venue
    price: str  # "12", "0", "10-25"
    category: str
    organizer: str
    weekly: int = 1  # > 1: an iCalendar series of that many weekly occurrences


@dataclass
class SyntheticSource:
    id: str
    name: str
    format: str
    language: str
    timezone: str
    records: list[Record] = field(default_factory=list)

    @property
    def events(self) -> int:
        """Events as Affiche counts them: each occurrence of a series is one."""
        return sum(r.weekly for r in self.records)

    @property
    def file_name(self) -> str:
        return self.id + EXTENSIONS[self.format]


def venues(count: int, rng: random.Random) -> list[Venue]:
    out = []
    for v in range(count):
        town, postal, country, zone, language = TOWNS[v % len(TOWNS)]
        name = f"{VENUE_KINDS[v % len(VENUE_KINDS)]} {VENUE_NAMES[(v // len(VENUE_KINDS)) % len(VENUE_NAMES)]}"
        out.append(Venue(name=f"{name} {v // 60 + 1}" if v >= 60 else name,
                         street=f"{1 + rng.randrange(120)} rue des Arts", town=town, postal=postal,
                         country=country, zone=zone, language=language))
    return out


def plan_region(events: int, seed: int = 9, formats: tuple[str, ...] = FORMATS) -> list[SyntheticSource]:
    """Sources of uneven sizes (0.4x to 1.6x the mean) adding up to exactly `events` events."""
    if events < 1:
        raise ValueError(f"a region needs at least one event, not {events}")
    rng = random.Random(seed)
    source_count = max(min(len(formats), events), events // 2500)
    weights = [0.4 + 1.2 * rng.random() for _ in range(source_count)]
    sizes = [max(1, int(events * w / sum(weights))) for w in weights]
    sizes[0] += events - sum(sizes)
    shared = venues(max(20, events // 100), rng)
    sources = []
    counter = 0
    for s, size in enumerate(sizes):
        feed_format = formats[s % len(formats)]
        home = TOWNS[s % len(TOWNS)]
        source = SyntheticSource(id=f"{feed_format}-{s:04d}", name=f"Programme {s} ({home[0]})",
                                 format=feed_format, language=home[4], timezone=home[3])
        # most of a source's venues are in its town; every venue is shared with other sources
        local = [v for v in shared if v.town == home[0]] or shared
        english = source.language == "en"
        while source.events < size:
            counter += 1
            i = counter
            venue = rng.choice(local) if rng.random() < 0.9 else rng.choice(shared)
            weekly = 4 if feed_format == "ics" and i % 10 == 0 and size - source.events >= 4 else 1
            start = FIRST_DAY + timedelta(days=rng.randrange(365), minutes=30 * rng.randrange(6))
            kind = rng.randrange(len(KINDS_FR))
            title = (TITLES_EN if english else TITLES_FR)[i % 5].format(venue.town)
            name = None if i % 53 == 0 else f"{title} ({i})"
            end = start + timedelta(hours=2) if i % 71 else start - timedelta(hours=1)
            if feed_format == "ics" and end < start:
                # The iCalendar expansion drops a DTEND before DTSTART without a word (the event
                # is published without endDate): invalid iCalendar events lack a name instead.
                name, end = None, start + timedelta(hours=2)
            description = (f"A new {KINDS_EN[kind]} show for all ages, with live music; performance {i}."
                           if english else
                           f"Une création {KINDS_FR[kind]} pour tous les publics, avec musique live ; "
                           f"représentation {i}.")
            price = rng.choice(["0", "8", "12", "15", "25", "10-25"])
            source.records.append(Record(
                id=f"ev-{i}", name=name, description=description, start=start, end=end, venue=venue,
                price=price, category=(KINDS_EN if english else KINDS_FR)[kind],
                organizer=f"Compagnie {'des Tréteaux' if i % 2 else 'du Grand Vent'} {i % 300}",
                weekly=weekly))
        sources.append(source)
    return sources


# --- the feed formats ------------------------------------------------------------------------


def _schema_event(r: Record, language: str) -> dict:
    event = {
        "@type": "Event", "identifier": r.id, "description": {"@value": r.description, "@language": language},
        "startDate": r.start.isoformat(), "endDate": r.end.isoformat(), "keywords": r.category,
        "location": {"@type": "Place", "name": r.venue.name, "address": {
            "@type": "PostalAddress", "streetAddress": r.venue.street, "addressLocality": r.venue.town,
            "postalCode": r.venue.postal, "addressCountry": r.venue.country}},
        "organizer": {"@type": "Organization", "name": r.organizer},
        "offers": _offer(r.price),
    }
    if r.name is not None:
        event["name"] = {"@value": r.name, "@language": language}
    return event


def _offer(price: str) -> dict:
    if "-" in price:
        low, high = price.split("-")
        return {"@type": "AggregateOffer", "lowPrice": low, "highPrice": high, "priceCurrency": "EUR"}
    return {"@type": "Offer", "price": price, "priceCurrency": "EUR"}


def as_jsonld(source: SyntheticSource) -> bytes:
    return json.dumps({"@context": "https://schema.org",
                       "@graph": [_schema_event(r, source.language) for r in source.records]},
                      ensure_ascii=False).encode("utf-8")


def as_html(source: SyntheticSource) -> bytes:
    blocks = "\n".join('<script type="application/ld+json">'
                       + json.dumps({"@context": "https://schema.org", **_schema_event(r, source.language)},
                                    ensure_ascii=False) + "</script>" for r in source.records)
    return (f'<!doctype html><html lang="{source.language}"><head><title>{source.name}</title>'
            f"{blocks}</head><body><h1>{source.name}</h1></body></html>").encode("utf-8")


def _ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")


def as_ics(source: SyntheticSource) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:-//affiche bench//{source.id}//FR"]
    for r in source.records:
        lines += ["BEGIN:VEVENT", f"UID:{r.id}@{source.id}.example",
                  f"DTSTART;TZID={source.timezone}:{r.start:%Y%m%dT%H%M%S}",
                  f"DTEND;TZID={source.timezone}:{r.end:%Y%m%dT%H%M%S}",
                  f"DESCRIPTION:{_ics_text(r.description)}",
                  f"LOCATION:{_ics_text(f'{r.venue.name}, {r.venue.street}, {r.venue.postal} {r.venue.town}')}",
                  f"CATEGORIES:{_ics_text(r.category)}"]
        if r.name is not None:
            lines.append(f"SUMMARY:{_ics_text(r.name)}")
        if r.weekly > 1:
            lines.append(f"RRULE:FREQ=WEEKLY;COUNT={r.weekly}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def as_csv(source: SyntheticSource) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(["id", "titre", "description", "debut", "fin", "lieu", "adresse", "code_postal",
                     "ville", "pays", "prix", "organisateur", "categorie", "langue"])
    for r in source.records:
        price = "gratuit" if r.price == "0" else f"{r.price.replace('-', ' à ')} €"
        writer.writerow([r.id, r.name or "", r.description, f"{r.start:%d/%m/%Y %Hh%M}",
                         f"{r.end:%d/%m/%Y %Hh%M}", r.venue.name, r.venue.street, r.venue.postal,
                         r.venue.town, r.venue.country, price, r.organizer, r.category, source.language])
    return buffer.getvalue().encode("utf-8")


def _ttl(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def as_turtle(source: SyntheticSource) -> bytes:
    out = ["@prefix schema: <http://schema.org/> .", "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> ."]
    lang = "@" + source.language
    for r in source.records:
        v = r.venue
        offer = (f"[ a schema:AggregateOffer ; schema:lowPrice {r.price.split('-')[0]} ; "
                 f"schema:highPrice {r.price.split('-')[1]} ; schema:priceCurrency \"EUR\" ]"
                 if "-" in r.price else f"[ a schema:Offer ; schema:price {r.price} ; schema:priceCurrency \"EUR\" ]")
        name = f" schema:name {_ttl(r.name)}{lang} ;" if r.name is not None else ""
        out.append(
            f"<https://{source.id}.example/event/{r.id}> a schema:Event ; schema:identifier {_ttl(r.id)} ;{name}"
            f" schema:description {_ttl(r.description)}{lang} ;"
            f' schema:startDate "{r.start.isoformat()}" ; schema:endDate "{r.end.isoformat()}" ;'
            f" schema:keywords {_ttl(r.category)} ;"
            f" schema:organizer [ a schema:Organization ; schema:name {_ttl(r.organizer)} ] ;"
            f" schema:location [ a schema:Place ; schema:name {_ttl(v.name)} ; schema:address [ a schema:PostalAddress ;"
            f" schema:streetAddress {_ttl(v.street)} ; schema:postalCode {_ttl(v.postal)} ;"
            f" schema:addressLocality {_ttl(v.town)} ; schema:addressCountry {_ttl(v.country)} ] ] ;"
            f" schema:offers {offer} .")
    return "\n".join(out).encode("utf-8")


WRITERS = {"html": as_html, "jsonld": as_jsonld, "ics": as_ics, "csv": as_csv, "rdf": as_turtle}


def write_source(source: SyntheticSource, directory: Path) -> Path:
    target = directory / source.file_name
    target.write_bytes(WRITERS[source.format](source))
    return target


def write_region(sources: list[SyntheticSource], directory: Path) -> Path:
    """Every source's feed file and the `sources.toml` declaring them; returns the TOML's path."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for source in sources:
        write_source(source, directory)
        lines += ["[[source]]", f'id = "{source.id}"', f'name = "{source.name}"',
                  f'path = "{source.file_name}"', f'format = "{source.format}"',
                  f'language = "{source.language}"', f'timezone = "{source.timezone}"',
                  'license = "https://creativecommons.org/publicdomain/zero/1.0/"', ""]
    config = directory / "sources.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    return config


def change_events(sources: list[SyntheticSource], share: float, directory: Path,
                  seed: int = 11) -> list[SyntheticSource]:
    """Give a new title to `share` of all events, the way organisers change things: a tenth of the
    events of a few sources (picked at random), not a few events everywhere. Rewrites those
    sources' files; returns them."""
    rng = random.Random(seed)
    wanted = max(1, round(sum(s.events for s in sources) * share))
    changed: list[SyntheticSource] = []
    for source in rng.sample(sources, len(sources)):
        if wanted <= 0:
            break
        for record in source.records[:: 10]:
            if wanted <= 0:
                break
            record.name = f"{record.name or 'Sans titre'} — nouvelle date"
            wanted -= record.weekly
        changed.append(source)
        write_source(source, directory)
    return changed


def region_nquads(events: int) -> bytes:
    """`events` normalised events as N-Quads (40 source graphs, shared venues, organisers,
    performers, an offer each), for a store loaded directly rather than harvested."""
    from bench.bench_pages import synthetic_nquads

    return synthetic_nquads(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sources = plan_region(args.events, args.seed)
    config = write_region(sources, args.out)
    print(f"{sum(s.events for s in sources):,} events in {len(sources)} sources: {config}")


if __name__ == "__main__":
    main()
