"""The pipeline: fetch → parse → normalise → validate → load, each stage a function of its own.

`check` runs everything but the load and stores nothing (the organiser's checker, `affiche check`);
`harvest` also replaces the source's named graph in one transaction. Whatever fails before the load
(an unreachable feed, a feed that is not what it claims to be) leaves the last good data published.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable

import pyoxigraph as ox
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF
from rdflib.term import Node

from ontology import AFFICHE, SCHEMA, XSD
from shapes import Problem, validate
from shapes.score import event_score, source_score
from sparql.queries import load_query
from sparql.store import EmbeddedStore, NTriples, OxTerms, Store

from . import identity
from .changes import ChangeLog, canonical_descriptions
from .fetch import Fetched, FetchError, FetchPolicy, fetch
from .formats import (
    ParseContext, ParseError, ParseProblem, detect_format, enforce_caps, get_format,
)
from .incremental import FeedHistory, Incoming, fingerprint
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
    held_back: bool = False  # a guard kept the last good data (no event, or too many lost)

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
            "held_back": self.held_back,
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


Triple = tuple[Node, Node, Node]


@dataclass
class Checked:
    report: Report
    triples: list[Triple]  # the valid events and what they reference, canonical
    quarantined: dict[str, Graph] = field(default_factory=dict)  # event IRI -> its description
    prefixes: list[tuple[str, str]] = field(default_factory=list)  # for `published` as Turtle

    @cached_property
    def published(self) -> Graph:
        """The published triples as an rdflib graph (for the checker and `convert`; a harvest
        writes `triples` as they are)."""
        return _as_graph(self.triples, self.prefixes)


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
    del parsed  # the feed as written is not needed any more: its memory goes back now
    report.feed_problems += [ParseProblem(where="normalisation", message=m) for m in normalised.dropped]
    report.feed_problems += [ParseProblem(where=normalised.origins.get(w.event, str(w.event)),
                                          field=w.field, message=w.message)
                             for w in normalised.warnings]
    reports = validate(normalised.graph, normalised.events)
    published_events, quarantined = [], {}
    all_events = frozenset(normalised.events)
    index = node_index(normalised.graph)
    prefixes = list(normalised.graph.namespaces())
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
            quarantined[str(event)] = _as_graph(reach(index, [event], stop=all_events), prefixes)
    report.finished_at = _now().isoformat()
    published = reach(index, published_events, stop=all_events)
    return Checked(report=report, triples=published, quarantined=quarantined, prefixes=prefixes)


def check(location: str | Path, source: Source, base_url: str, format_name: str | None = None,
          policy: FetchPolicy = FetchPolicy()) -> Checked:
    """Fetch then check; raises FetchError or ParseError when the input cannot be read."""
    return check_bytes(fetch(location, policy), source, base_url, format_name, policy=policy)


def describe(graph: Graph, roots: list[URIRef], depth: int = 4, stop: frozenset = frozenset()) -> Graph:
    """The roots and every node they reach (places, offers, addresses…), as a new graph.

    Nodes in `stop` (the feed's other events) are linked to but not described, so a published
    event never drags a quarantined one into the public graph.
    """
    return _as_graph(reach(node_index(graph), roots, depth, stop), graph.namespaces())


def node_index(triples: Iterable[Triple]) -> dict[Node, list[tuple[Node, Node]]]:
    """Each subject's (predicate, object) pairs: one pass over the triples, then every description
    is dictionary look-ups (rdflib's own look-ups cost several times more per call)."""
    index: dict[Node, list[tuple[Node, Node]]] = defaultdict(list)
    for s, p, o in triples:
        index[s].append((p, o))
    return index


def reach(index: dict[Node, list[tuple[Node, Node]]], roots: Iterable[Node], depth: int = 4,
          stop: frozenset = frozenset()) -> list[Triple]:
    """`describe`'s triples: the roots and the nodes they reach within `depth` links."""
    out: list[Triple] = []
    rdf_type = RDF.type  # a namespace attribute costs a call: once, not per triple
    roots = list(roots)
    seen: set = set(stop - set(roots))
    frontier = roots
    for _ in range(depth + 1):
        next_frontier = []
        for node in frontier:
            if node in seen:
                continue
            seen.add(node)
            for p, o in index.get(node, ()):
                out.append((node, p, o))
                if not isinstance(o, Literal) and o not in seen and p != rdf_type:
                    next_frontier.append(o)
        frontier = next_frontier
    return out


def _as_graph(triples: Iterable[Triple], prefixes: Iterable[tuple[str, str]]) -> Graph:
    out = Graph()
    for triple in triples:
        out.add(triple)
    for prefix, namespace in prefixes:
        out.bind(prefix, namespace, replace=True)
    return out


def _display_name(graph: Graph, event: URIRef, language: str) -> str:
    names = list(graph.objects(event, SCHEMA.name))
    for name in names:
        if getattr(name, "language", None) == language:
            return str(name)
    return str(names[0]) if names else ""


def source_description(source: Source, base_url: str, harvested_at: str) -> list[Triple]:
    """The source's own description, kept in its named graph so that provenance travels with it."""
    node = URIRef(identity.iri(base_url, "source", source.id))
    triples = [(node, RDF.type, AFFICHE.Source), (node, RDF.type, DCAT.Dataset),
               (node, DCTERMS.title, Literal(source.name))]
    if source.url:
        triples.append((node, DCAT.accessURL, URIRef(source.url)))
    if source.license:
        triples.append((node, DCTERMS.license, URIRef(source.license)))
    triples.append((node, DCTERMS.modified, Literal(harvested_at, datatype=XSD.dateTime)))
    return triples


def harvest(source: Source, store: Store, base_url: str, reports_dir: Path | None = None,
            policy: FetchPolicy = FetchPolicy(), changes: ChangeLog | None = None,
            history: FeedHistory | None = None, withheld: frozenset[str] = frozenset(),
            accept_loss: bool = False, pool: Executor | None = None) -> Report:
    """Harvest one source into its named graph; on any read error, the published data stays.

    With a change log, every event created, updated or removed by this harvest becomes a member.
    With a feed history (harvester/incremental.py), an unchanged feed is neither parsed nor
    written, and the bytes received are archived. Events in `withheld` (withdrawn by their
    organiser) are left out of the published graph and of the report, whatever the feed says.
    A feed with no event, or losing more than `policy.max_loss`, is held back (`held_back`)
    unless `accept_loss` (its organiser or the operator confirmed it).

    With a `pool` of worker processes, the reading and checking (`prepare`) runs there; the
    store, the change log and the reports are always written here (`commit`).
    """
    task = HarvestTask(source, history, withheld, _conditional(store, base_url, source, history))
    if pool is None:
        prepared = prepare(task, base_url, policy, changes is not None)
    else:
        prepared = pool.submit(prepare, task, base_url, policy, changes is not None).result()
    return commit(prepared, store, base_url, reports_dir, policy, changes, history, accept_loss)


@dataclass(frozen=True)
class HarvestTask:
    """One source to read and check, with what the writing process knows about it."""

    source: Source
    history: FeedHistory | None = None
    withheld: frozenset[str] = frozenset()
    conditional: bool = True  # the store holds the source's events: an unchanged feed is skipped


@dataclass
class Prepared:
    """A source read, checked and made ready to write: what a worker process hands back, as
    plain data (N-Triples and Turtle text), so that nothing heavy crosses between processes."""

    source: Source
    started: datetime
    report: Report
    published: NTriples | None = None  # the named graph: events and the source's description
    event_count: int = 0  # published nodes with a start date (what the loss guard compares)
    descriptions: dict[str, str] = field(default_factory=dict)  # event IRI -> canonical N-Triples
    quarantined: dict[str, str] = field(default_factory=dict)  # event IRI -> Turtle
    incoming: Incoming | None = None  # what the history fetched (its bytes dropped), to remember


def _conditional(store: Store, base_url: str, source: Source, history: FeedHistory | None) -> bool:
    if history is None:
        return False
    return _published_event_count(store, identity.graph_iri(base_url, source.id)) > 0


def prepare(task: HarvestTask, base_url: str, policy: FetchPolicy,
            describe_events: bool = True) -> Prepared:
    """Fetch, parse, normalise, validate and describe one source; writes nothing but the feed
    history's archive, so it can run in a worker process."""
    source, history, started = task.source, task.history, _now()
    incoming, archived = None, None
    try:
        if history is None:
            checked = check(source.location, source, base_url, source.format, policy)
        else:
            incoming = history.fetch(source.location, policy, source.format,
                                     conditional=task.conditional,
                                     fingerprint=fingerprint(source, base_url, policy))
            if incoming.unchanged:
                return Prepared(source, started, Report(
                    source_id=source.id, location=source.location, format=source.format,
                    started_at=started.isoformat(), finished_at=_now().isoformat(),
                    unchanged=True, archive=history.state().archived))
            archived = history.archive(incoming, source.format)
            checked = check_bytes(incoming.fetched, source, base_url, source.format, policy=policy)
            incoming = replace(incoming, fetched=replace(incoming.fetched, content=b""))
    except (FetchError, ParseError) as exc:
        return Prepared(source, started, Report(
            source_id=source.id, location=source.location, format=source.format,
            started_at=started.isoformat(), finished_at=_now().isoformat(),
            error=f"{exc} — the previously published data is kept", archive=archived))
    if task.withheld:
        checked = withhold(checked, task.withheld)
    checked.report.archive = archived
    terms = OxTerms()
    descriptions = {}
    if describe_events:
        descriptions = canonical_descriptions(event_descriptions(checked.triples, checked.report),
                                              terms)
    graph = checked.triples + source_description(source, base_url, checked.report.started_at)
    data = ox.serialize([ox.Triple(terms[s], terms[p], terms[o]) for s, p, o in graph],
                        format=ox.RdfFormat.N_TRIPLES)
    return Prepared(
        source, started, checked.report, NTriples(data, len(graph)),
        event_count=_with_start_date(checked.triples),
        descriptions=descriptions,
        quarantined={iri: g.serialize(format="turtle") for iri, g in checked.quarantined.items()},
        incoming=incoming)


def _with_start_date(triples: list[Triple]) -> int:
    start = SCHEMA.startDate
    return len({s for s, p, _ in triples if p == start})


def commit(prepared: Prepared, store: Store, base_url: str, reports_dir: Path | None = None,
           policy: FetchPolicy = FetchPolicy(), changes: ChangeLog | None = None,
           history: FeedHistory | None = None, accept_loss: bool = False) -> Report:
    """Write what `prepare` made: the named graph in one transaction, the change log, the feed
    history and the report; or nothing but the report when a guard holds the harvest back."""
    report, source = prepared.report, prepared.source
    if report.unchanged:
        return report
    if report.error is None:
        graph_iri = identity.graph_iri(base_url, source.id)
        previous = _published_event_count(store, graph_iri)
        if not report.events and previous and not accept_loss:
            report.held_back = True
            report.error = ("the feed now holds no event at all; the previously published events "
                            "are kept until the feed has events again")
        elif not accept_loss and (lost := _excessive_loss(previous, prepared.event_count,
                                                          policy.max_loss)):
            report.held_back = True
            report.error = (f"the feed would remove {lost} of the {previous} published events "
                            f"(over the allowed share of {policy.max_loss:.0%}); the previously "
                            "published events are kept until the feed has them again")
        else:
            store.replace_graph(graph_iri, _for_store(store, prepared.published))
            if changes is not None:
                changes.record_canonical(source.id, prepared.descriptions)
            if prepared.incoming is not None and history is not None:
                history.remember(prepared.incoming, report.archive, prepared.started)
    if reports_dir is not None:
        save_report(report, reports_dir, prepared.quarantined if report.error is None else {})
    return report


def _for_store(store: Store, published: NTriples) -> Graph | NTriples:
    """The embedded store loads N-Triples as they are; other stores take an rdflib graph."""
    if isinstance(store, EmbeddedStore):
        return published
    return Graph().parse(data=published.data, format="nt")


def harvest_all(tasks: list[HarvestTask], store: Store, base_url: str,
                reports_dir: Path | None = None, policy: FetchPolicy = FetchPolicy(),
                changes: ChangeLog | None = None, workers: int = 1, accept_loss: bool = False,
                on_done: Callable[[Report], None] | None = None) -> list[Report]:
    """Harvest several sources, reading and checking up to `workers` of them at once in worker
    processes; this process alone writes the store, the change log and the reports, one source
    at a time as each is ready. Reports come back in the order of `tasks`."""
    if workers <= 1 or len(tasks) <= 1:
        reports = []
        for task in tasks:
            reports.append(harvest(task.source, store, base_url, reports_dir, policy, changes,
                                   task.history, task.withheld, accept_loss))
            if on_done is not None:
                on_done(reports[-1])
        return reports
    reports: dict[int, Report] = {}
    workers = min(workers, len(tasks))
    with worker_pool(workers) as pool:
        pending: dict = {}
        queue = iter(enumerate(tasks))

        def submit_next() -> None:
            for index, task in queue:
                conditional = _conditional(store, base_url, task.source, task.history)
                task = replace(task, conditional=conditional)
                pending[pool.submit(prepare, task, base_url, policy, changes is not None)] = index
                return

        # one source ahead of the workers, no more: a prepared source waits in memory
        for _ in range(workers + 1):
            submit_next()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                task = tasks[index]
                reports[index] = commit(future.result(), store, base_url, reports_dir, policy,
                                        changes, task.history, accept_loss)
                if on_done is not None:
                    on_done(reports[index])
                submit_next()
    return [reports[i] for i in range(len(tasks))]


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Processes that read and check feeds (`prepare`) for the process that writes. Spawned,
    not forked: the writer holds the store's files and threads that a fork would copy."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))


def _exit_with_parent(parent: int) -> None:
    """A worker ends as soon as its writer is gone (killed, say) rather than finish a feed that
    nobody will write, or wait for ever on a queue nobody reads, holding the writer's output
    pipes open. The writer's pid comes from the writer: a worker that starts after it died
    must not take its new parent (init) for it."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="affiche-parent-watch", daemon=True).start()


def _excessive_loss(previous: int, now: int, max_loss: float) -> int:
    """How many published events this harvest would remove, when that is over the allowed share.

    `now` is counted like `count_events_in_graph` (anything with a start date), so both sides agree.
    """
    lost = previous - now
    return lost if previous and lost > 0 and lost > previous * max_loss else 0


def withhold(checked: Checked, withheld: frozenset[str]) -> Checked:
    """The same check without the events their organiser withdrew (they stay withdrawn)."""
    kept = [e for e in checked.report.events if e.iri not in withheld]
    left_out = len(checked.report.events) - len(kept)
    if not left_out:
        return checked
    every = frozenset(URIRef(e.iri) for e in checked.report.events)
    published = reach(node_index(checked.triples),
                      [URIRef(e.iri) for e in kept if e.status == "published"], stop=every)
    checked.report.events = kept
    checked.report.feed_problems.append(ParseProblem(
        where="withdrawal", message=f"{left_out} event(s) withdrawn by the organiser are left out"))
    quarantined = {iri: g for iri, g in checked.quarantined.items() if iri not in withheld}
    return Checked(report=checked.report, triples=published, quarantined=quarantined,
                   prefixes=checked.prefixes)


def event_descriptions(published: Iterable[Triple], report: Report) -> dict[str, list[Triple]]:
    """Each published event's own description (what the change log compares and keeps)."""
    events = [URIRef(e.iri) for e in report.events if e.status == "published"]
    stop = frozenset(events)
    index = node_index(published)
    return {str(event): reach(index, [event], stop=stop) for event in events}


def _published_event_count(store: Store, graph_iri: str) -> int:
    rows = store.select(load_query("count_events_in_graph"), {"graph": URIRef(graph_iri)})
    return int(rows[0]["count"]) if rows else 0


def save_report(report: Report, reports_dir: Path, quarantined: dict[str, str]) -> None:
    """Keep the last report (with the quarantined events' data, as Turtle) for the organiser's
    pages."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_json()
    data["quarantined_data"] = dict(quarantined)
    target = reports_dir / f"{report.source_id}.json"
    temporary = target.with_suffix(".json.tmp")
    # no indent: json's C encoder only writes compact JSON, several times faster than indented
    temporary.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
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
