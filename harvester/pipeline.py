"""The pipeline: fetch → parse → normalise → validate → load, each stage a function of its own.

`check` runs everything but the load and stores nothing (the organiser's checker, `affiche check`);
`harvest` also replaces the source's named graph in one transaction. Whatever fails before the load
(an unreachable feed, a feed that is not what it claims to be) leaves the last good data published.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF

from ontology import AFFICHE, SCHEMA, XSD
from shapes import Problem, validate
from shapes.score import event_score, source_score
from sparql.queries import load_query
from sparql.store import Store

from . import identity
from .changes import ChangeLog
from .fetch import Fetched, FetchError, FetchPolicy, fetch
from .formats import (
    ParseContext, ParseError, ParseProblem, detect_format, enforce_caps, get_format,
)
from .incremental import FeedHistory, fingerprint
from .normalise import NormaliseContext, normalise
from .sources import Source


@dataclass
class EventOutcome:
    iri: str
    name: str
    status: str  # "published" | "quarantined"
    origin: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def score(self) -> int:
        return event_score(p.severity for p in self.problems)


@dataclass
class Report:
    """What happened to one feed; the same data for the terminal, JSON, pages and the API."""

    source_id: str
    location: str
    format: str | None = None
    started_at: str = ""
    finished_at: str = ""
    events: list[EventOutcome] = field(default_factory=list)
    feed_problems: list[ParseProblem] = field(default_factory=list)
    error: str | None = None  # the feed could not be read at all: nothing changed
    unchanged: bool = False  # same bytes as the last harvest (304 or same hash): nothing written
    archive: str | None = None  # the archived copy of the bytes this report is about

    @property
    def summary(self) -> dict[str, int]:
        return {
            "found": len(self.events),
            "published": sum(e.status == "published" for e in self.events),
            "quarantined": sum(e.status == "quarantined" for e in self.events),
            "warnings": sum(p.severity == "warning" for e in self.events for p in e.problems),
        }

    @property
    def score(self) -> float | None:
        """The mean of the events' quality scores (weights in shapes/score.py and the README)."""
        return source_score(e.score for e in self.events)

    def to_json(self, language: str = "en") -> dict:
        return {
            "source": self.source_id,
            "input": self.location,
            "format": self.format,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "unchanged": self.unchanged,
            "archive": self.archive,
            "summary": self.summary,
            "score": self.score,
            "feed_problems": [asdict(p) for p in self.feed_problems],
            "events": [
                {
                    "iri": event.iri,
                    "name": event.name,
                    "status": event.status,
                    "origin": event.origin,
                    "score": event.score,
                    "problems": [
                        {"severity": p.severity, "field": p.field, "message": p.message(language),
                         "messages": p.messages, "value": p.value, "shape": p.shape}
                        for p in event.problems
                    ],
                }
                for event in self.events
            ],
        }


@dataclass
class Checked:
    report: Report
    published: Graph  # the valid events and what they reference, canonical
    quarantined: dict[str, Graph] = field(default_factory=dict)  # event IRI -> its description


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def check_bytes(fetched: Fetched, source: Source, base_url: str, format_name: str | None = None,
                now: datetime | None = None, policy: FetchPolicy | None = None) -> Checked:
    """Parse, normalise and validate one feed's bytes. Raises ParseError when unreadable."""
    now = now or _now()
    feed_format = get_format(format_name) if format_name else detect_format(fetched)
    if not feed_format.sniff(fetched.content):
        start = fetched.content[:40].decode("utf-8", errors="replace")
        raise ParseError(f"{fetched.location}: declared as {feed_format.label}, but the content "
                         f"does not look like it (it starts with {start!r})")
    report = Report(source_id=source.id, location=fetched.location, format=feed_format.name,
                    started_at=now.isoformat())
    parse_context = ParseContext(
        source_id=source.id, language=source.language, timezone=source.timezone,
        base_url=fetched.location if "://" in fetched.location else None, now=now,
        fetch_policy=policy, recurrence_days=(policy or FetchPolicy()).recurrence_days,
    )
    parsed = feed_format.parse(fetched.content, parse_context)
    enforce_caps(parsed, fetched.location, policy)
    report.feed_problems = parsed.problems
    normalised = normalise(
        parsed.graph,
        NormaliseContext(base_url=base_url, source_id=source.id, language=source.language,
                         timezone=source.timezone, harvested_at=now),
        parsed.origins,
    )
    report.feed_problems += [ParseProblem(where="normalisation", message=m) for m in normalised.dropped]
    report.feed_problems += [ParseProblem(where=normalised.origins.get(w.event, str(w.event)),
                                          field=w.field, message=w.message)
                             for w in normalised.warnings]
    reports = validate(normalised.graph, normalised.events)
    published_events, quarantined = [], {}
    all_events = frozenset(normalised.events)
    for event in normalised.events:
        event_report = reports[event]
        status = "published" if event_report.publishable else "quarantined"
        report.events.append(EventOutcome(
            iri=str(event),
            name=_display_name(normalised.graph, event, source.language),
            status=status,
            origin=normalised.origins.get(event, fetched.location),
            problems=event_report.problems,
        ))
        if status == "published":
            published_events.append(event)
        else:
            quarantined[str(event)] = describe(normalised.graph, [event], stop=all_events)
    report.finished_at = _now().isoformat()
    published = describe(normalised.graph, published_events, stop=all_events)
    return Checked(report=report, published=published, quarantined=quarantined)


def check(location: str | Path, source: Source, base_url: str, format_name: str | None = None,
          policy: FetchPolicy = FetchPolicy()) -> Checked:
    """Fetch then check; raises FetchError or ParseError when the input cannot be read."""
    return check_bytes(fetch(location, policy), source, base_url, format_name, policy=policy)


def describe(graph: Graph, roots: list[URIRef], depth: int = 4, stop: frozenset = frozenset()) -> Graph:
    """The roots and every node they reach (places, offers, addresses…), as a new graph.

    Nodes in `stop` (the feed's other events) are linked to but not described, so a published
    event never drags a quarantined one into the public graph.
    """
    out = Graph()
    seen: set = set(stop - set(roots))
    frontier = list(roots)
    for _ in range(depth + 1):
        next_frontier = []
        for node in frontier:
            if node in seen:
                continue
            seen.add(node)
            for p, o in graph.predicate_objects(node):
                out.add((node, p, o))
                if not isinstance(o, Literal) and o not in seen and p != RDF.type:
                    next_frontier.append(o)
        frontier = next_frontier
    for prefix, namespace in graph.namespaces():
        out.bind(prefix, namespace, replace=True)
    return out


def _display_name(graph: Graph, event: URIRef, language: str) -> str:
    names = list(graph.objects(event, SCHEMA.name))
    for name in names:
        if getattr(name, "language", None) == language:
            return str(name)
    return str(names[0]) if names else ""


def source_description(source: Source, base_url: str, harvested_at: str) -> Graph:
    """The source's own description, kept in its named graph so that provenance travels with it."""
    graph = Graph()
    node = URIRef(identity.iri(base_url, "source", source.id))
    graph.add((node, RDF.type, AFFICHE.Source))
    graph.add((node, RDF.type, DCAT.Dataset))
    graph.add((node, DCTERMS.title, Literal(source.name)))
    if source.url:
        graph.add((node, DCAT.accessURL, URIRef(source.url)))
    if source.license:
        graph.add((node, DCTERMS.license, URIRef(source.license)))
    graph.add((node, DCTERMS.modified, Literal(harvested_at, datatype=XSD.dateTime)))
    return graph


def harvest(source: Source, store: Store, base_url: str, reports_dir: Path | None = None,
            policy: FetchPolicy = FetchPolicy(), changes: ChangeLog | None = None,
            history: FeedHistory | None = None, withheld: frozenset[str] = frozenset()) -> Report:
    """Harvest one source into its named graph; on any read error, the published data stays.

    With a change log, every event created, updated or removed by this harvest becomes a member.
    With a feed history (harvester/incremental.py), an unchanged feed is neither parsed nor
    written, and the bytes received are archived. Events in `withheld` (withdrawn by their
    organiser) are left out of the published graph and of the report, whatever the feed says.
    """
    started = _now()
    incoming, archived = None, None
    try:
        if history is None:
            checked = check(source.location, source, base_url, source.format, policy)
        else:
            published = _published_event_count(store, identity.graph_iri(base_url, source.id)) > 0
            incoming = history.fetch(source.location, policy, source.format, conditional=published,
                                     fingerprint=fingerprint(source, base_url, policy))
            if incoming.unchanged:
                return Report(source_id=source.id, location=source.location, format=source.format,
                              started_at=started.isoformat(), finished_at=_now().isoformat(),
                              unchanged=True, archive=history.state().archived)
            archived = history.archive(incoming, source.format)
            checked = check_bytes(incoming.fetched, source, base_url, source.format, policy=policy)
    except (FetchError, ParseError) as exc:
        report = Report(source_id=source.id, location=source.location, format=source.format,
                        started_at=started.isoformat(), finished_at=_now().isoformat(),
                        error=f"{exc} — the previously published data is kept", archive=archived)
    else:
        if withheld:
            checked = withhold(checked, withheld)
        report = checked.report
        report.archive = archived
        graph_iri = identity.graph_iri(base_url, source.id)
        previous = _published_event_count(store, graph_iri)
        if not report.events and previous:
            report.error = ("the feed now holds no event at all; the previously published events "
                            "are kept until the feed has events again")
        elif lost := _excessive_loss(previous, checked.published, policy.max_loss):
            report.error = (f"the feed would remove {lost} of the {previous} published events "
                            f"(over the allowed share of {policy.max_loss:.0%}); the previously "
                            "published events are kept until the feed has them again")
        else:
            graph = checked.published + source_description(source, base_url, report.started_at)
            store.replace_graph(graph_iri, graph)
            if changes is not None:
                changes.record(source.id, event_descriptions(checked.published, report))
            if incoming is not None:
                history.remember(incoming, archived, started)
    if reports_dir is not None:
        save_report(report, reports_dir, checked.quarantined if report.error is None else {})
    return report


def _excessive_loss(previous: int, published: Graph, max_loss: float) -> int:
    """How many published events this harvest would remove, when that is over the allowed share.

    Counted like `count_events_in_graph` (anything with a start date), so both sides agree.
    """
    now = len(set(published.subjects(SCHEMA.startDate, None)))
    lost = previous - now
    return lost if previous and lost > 0 and lost > previous * max_loss else 0


def withhold(checked: Checked, withheld: frozenset[str]) -> Checked:
    """The same check without the events their organiser withdrew (they stay withdrawn)."""
    kept = [e for e in checked.report.events if e.iri not in withheld]
    left_out = len(checked.report.events) - len(kept)
    if not left_out:
        return checked
    every = frozenset(URIRef(e.iri) for e in checked.report.events)
    published = describe(checked.published, [URIRef(e.iri) for e in kept if e.status == "published"],
                         stop=every)
    checked.report.events = kept
    checked.report.feed_problems.append(ParseProblem(
        where="withdrawal", message=f"{left_out} event(s) withdrawn by the organiser are left out"))
    quarantined = {iri: g for iri, g in checked.quarantined.items() if iri not in withheld}
    return Checked(report=checked.report, published=published, quarantined=quarantined)


def event_descriptions(published: Graph, report: Report) -> dict[str, Graph]:
    """Each published event's own description (what the change log compares and keeps)."""
    events = [URIRef(e.iri) for e in report.events if e.status == "published"]
    stop = frozenset(events)
    return {str(event): describe(published, [event], stop=stop) for event in events}


def _published_event_count(store: Store, graph_iri: str) -> int:
    rows = store.select(load_query("count_events_in_graph"), {"graph": URIRef(graph_iri)})
    return int(rows[0]["count"]) if rows else 0


def save_report(report: Report, reports_dir: Path, quarantined: dict[str, Graph]) -> None:
    """Keep the last report (with the quarantined events' data) for the organiser's pages."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_json()
    data["quarantined_data"] = {iri: g.serialize(format="turtle") for iri, g in quarantined.items()}
    target = reports_dir / f"{report.source_id}.json"
    temporary = target.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    temporary.replace(target)
    if not report.unchanged:
        append_history(report, reports_dir)


def append_history(report: Report, reports_dir: Path) -> None:
    """One JSON line per harvest in `reports/history/{source}.jsonl`: the score over time."""
    history_dir = reports_dir / "history"
    history_dir.mkdir(parents=True, exist_ok=True)
    line = {"started_at": report.started_at, "score": report.score, "error": report.error,
            **report.summary}
    with (history_dir / f"{report.source_id}.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")


def load_history(reports_dir: Path, source_id: str, limit: int = 50) -> list[dict]:
    """The source's last `limit` harvests, oldest first; a damaged line is skipped."""
    path = reports_dir / "history" / f"{source_id}.jsonl"
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines()[-limit:]:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def load_report(reports_dir: Path, source_id: str) -> dict | None:
    path = reports_dir / f"{source_id}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
