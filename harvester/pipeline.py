"""The pipeline: fetch → parse → normalise → validate → load, each stage a function of its own.

`check` runs everything but the load and stores nothing (the organiser's checker, `affiche check`);
`harvest` also replaces the source's named graph in one transaction. Whatever fails before the load
(an unreachable feed, a feed that is not what it claims to be) leaves the last good data published.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property, partial
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pyoxigraph as ox
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF
from rdflib.term import Node

from ontology import AFFICHE, PROV, SCHEMA, XSD
from shapes import Problem, validate
from shapes.score import event_score, source_score
from sparql.queries import load_query
from sparql.graph_files import GraphFiles, Staged
from sparql.store import EmbeddedStore, NTriples, OxTerms, Store, Written

from . import identity
from .changes import (
    ChangeLog, canonical_descriptions, canonical_node_descriptions, digest_descriptions, ntriples,
    spellings,
)
from .fetch import Fetched, FetchError, FetchPolicy, fetch
from .formats import (
    ParseContext, ParseError, ParseProblem, detect_format, enforce_caps, get_format,
)
from .harvest_times import keep_harvest_times, kept_times
from .incremental import FeedHistory, Incoming, fingerprint
from .normalise import PREFIXES, NormaliseContext, normalise
from .sources import Source

log = logging.getLogger(__name__)


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
    counts: dict[str, int] | None = None  # `summary`, kept when the events were let go

    @property
    def summary(self) -> dict[str, int]:
        if self.counts is not None:
            return dict(self.counts)
        return {
            "found": len(self.events),
            "published": sum(e.status == "published" for e in self.events),
            "quarantined": sum(e.status == "quarantined" for e in self.events),
            "warnings": sum(p.severity == "warning" for e in self.events for p in e.problems),
        }

    def summarised(self) -> "Report":
        """This report without its events, their counts kept (`summary`): what a harvest of many
        sources keeps of each once it is saved (about 600 bytes per event otherwise, 600 MB for
        a million). Not to be saved: the saved report is the whole one."""
        return replace(self, events=[], counts=self.summary)

    @property
    def score(self) -> float | None:
        """The mean of the events' quality scores (weights in shapes/score.py and the README)."""
        return source_score(e.score for e in self.events)

    def to_json(self, language: str = "en") -> dict:
        """The report with each event's problems written out (the checker, the API, jobs)."""
        data = self.to_file_json(language)
        table = data.pop("problem_table")
        for event in data["events"]:
            # the same dict for every event with that problem: built once, never modified
            event["problems"] = [table[i] for i in event["problems"]]
        return data

    def to_file_json(self, language: str = "en") -> dict:
        """The report as it is saved: each distinct problem once in `problem_table`, each event's
        `problems` its positions there (a feed's thousands of events share a few dozen problems:
        the same missing image again and again). `load_report` writes them out again."""
        table = _ProblemTable(language)
        scores: dict[tuple[int, ...], int] = {}
        events = []
        for event in self.events:
            positions = tuple(map(table.position, event.problems))
            score = scores.get(positions)
            if score is None:
                score = scores[positions] = event_score(table.severities[i] for i in positions)
            events.append({"iri": event.iri, "name": event.name, "status": event.status,
                           "origin": event.origin, "score": score, "problems": positions})
        published = sum(e.status == "published" for e in self.events)
        warning = [severity == "warning" for severity in table.severities]
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
            "summary": {"found": len(events), "published": published,
                        "quarantined": sum(e.status == "quarantined" for e in self.events),
                        "warnings": sum(warning[i] for e in events for i in e["problems"])},
            "score": source_score(e["score"] for e in events),
            "feed_problems": [asdict(p) for p in self.feed_problems],
            "problem_table": table.rows,
            "events": events,
        }


class _ProblemTable:
    """A report's distinct problems, each written once, in the order first met. The validator
    hands the same `Problem` object to many events, so most are found by identity; equal ones
    made apart are found by value."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.rows: list[dict] = []
        self.severities: list[str] = []
        self._by_object: dict[int, int] = {}  # id(problem): the report keeps them all alive
        self._by_value: dict[tuple, int] = {}

    def position(self, problem: Problem) -> int:
        found = self._by_object.get(id(problem))
        if found is not None:
            return found
        key = (problem.severity, problem.field, problem.value, problem.shape,
               tuple(problem.messages.items()))
        found = self._by_value.get(key)
        if found is None:
            found = self._by_value[key] = len(self.rows)
            self.rows.append({"severity": problem.severity, "field": problem.field,
                              "message": problem.message(self.language),
                              "messages": problem.messages, "value": problem.value,
                              "shape": problem.shape})
            self.severities.append(problem.severity)
        self._by_object[id(problem)] = found
        return found


Triple = tuple[Node, Node, Node]


@dataclass
class Checked:
    report: Report
    triples: list[Triple]  # the valid events and what they reference, canonical
    quarantined: dict[str, Graph] = field(default_factory=dict)  # event IRI -> its description
    prefixes: list[tuple[str, str]] = field(default_factory=list)  # for `published` as Turtle
    # the whole normalised feed as `node_index`, made once by `check_bytes` and read again to
    # describe each event for the change log
    index: dict[Node, list[tuple[Node, Node]]] | None = field(default=None, repr=False)
    feed_events: frozenset[Node] = frozenset()  # every event of the feed, whatever became of it
    described: dict[Node, list[Node]] = field(default_factory=dict, repr=False)  # `reach_nodes`

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
        parsed.triples,
        NormaliseContext(base_url=base_url, source_id=source.id, language=source.language,
                         timezone=source.timezone, harvested_at=now),
        parsed.origins,
    )
    del parsed  # the feed as written is not needed any more: its memory goes back now
    report.feed_problems += [ParseProblem(where="normalisation", message=m) for m in normalised.dropped]
    report.feed_problems += [ParseProblem(where=normalised.origins.get(w.event, str(w.event)),
                                          field=w.field, message=w.message)
                             for w in normalised.warnings]
    reports = validate(normalised.triples, normalised.events)
    published_events, quarantined = [], {}
    all_events = frozenset(normalised.events)
    index = normalised.triples.index()
    prefixes = list(PREFIXES)  # over rdflib's own, which every new graph has
    # each event's description, walked once: its quarantine record, or its part of the published
    # graph and its change-log member
    described = {event: reach_nodes(index, [event], stop=all_events) for event in normalised.events}
    for event in normalised.events:
        event_report = reports[event]
        status = "published" if event_report.publishable else "quarantined"
        report.events.append(EventOutcome(
            iri=str(event),
            name=_display_name(index, event, source.language),
            status=status,
            origin=normalised.origins.get(event, fetched.location),
            problems=event_report.problems,
        ))
        if status == "published":
            published_events.append(event)
        else:
            # only our prefixes: binding rdflib's thirty cost more than the event (its Turtle is
            # written by pyoxigraph, with prefixes of its own: `_turtle`)
            quarantined[str(event)] = _as_graph(triples_of(index, described[event]), prefixes,
                                                bind_namespaces="none")
    report.finished_at = _now().isoformat()
    # what the published events reach together is what each reaches (a node one reaches through
    # another published event, that event reaches nearer)
    nodes = dict.fromkeys(node for event in published_events for node in described[event])
    published = triples_of(index, nodes)
    return Checked(report=report, triples=published, quarantined=quarantined, prefixes=prefixes,
                   index=index, feed_events=all_events, described=described)


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
    return triples_of(index, reach_nodes(index, roots, depth, stop))


def reach_nodes(index: dict[Node, list[tuple[Node, Node]]], roots: Iterable[Node], depth: int = 4,
                stop: frozenset = frozenset()) -> list[Node]:
    """The nodes `reach` describes (the roots, then what they link to), in the order it meets
    them. `stop` is looked into, never copied: a feed's events are the stop of each of them."""
    type_links = {RDF.type}  # a set: an IRI's hash is cached, equality is a Python call
    roots = list(roots)
    starting = set(roots)
    seen: set = set()
    visited: list[Node] = []
    frontier = roots
    for _ in range(depth + 1):
        next_frontier = []
        for node in frontier:
            if node in seen or (node in stop and node not in starting):
                continue
            seen.add(node)
            visited.append(node)
            for p, o in index.get(node, ()):
                if not isinstance(o, Literal) and o not in seen and p not in type_links:
                    next_frontier.append(o)
        frontier = next_frontier
    return visited


def triples_of(index: dict[Node, list[tuple[Node, Node]]], nodes: Iterable[Node]) -> list[Triple]:
    """The triples of these nodes as subjects."""
    return [(node, p, o) for node in nodes for p, o in index.get(node, ())]


def _as_graph(triples: Iterable[Triple], prefixes: Iterable[tuple[str, str]],
              bind_namespaces: str = "rdflib") -> Graph:
    # SimpleMemory: the same triples without the contexts (named graphs) these never have
    out = Graph(store="SimpleMemory", bind_namespaces=bind_namespaces)
    add = out.store.add
    for triple in triples:
        add(triple, None)
    for prefix, namespace in prefixes:
        out.bind(prefix, namespace, replace=True)
    return out


def _display_name(index: dict[Node, list[tuple[Node, Node]]], event: URIRef, language: str) -> str:
    name_links = {SCHEMA.name}  # a set: an IRI's hash is cached, equality is a Python call
    names = [o for p, o in index.get(event, ()) if p in name_links]
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
            accept_loss: bool = False, pool: Executor | None = None,
            graph_files: GraphFiles | None = None) -> Report:
    """Harvest one source into its named graph; on any read error, the published data stays.

    With a change log, every event created, updated or removed by this harvest becomes a member.
    With a feed history (harvester/incremental.py), an unchanged feed is neither parsed nor
    written, and the bytes received are archived. Events in `withheld` (withdrawn by their
    organiser) are left out of the published graph and of the report, whatever the feed says.
    A feed with no event, or losing more than `policy.max_loss`, is held back (`held_back`)
    unless `accept_loss` (its organiser or the operator confirmed it).

    With a `pool` of worker processes, the reading and checking (`prepare`) runs there; the
    store, the change log and the reports are always written here (`commit`). With
    `graph_files`, the graph's dump files are made as it is written (by the worker, with a pool).
    """
    task = HarvestTask(source, history, withheld, _conditional(store, base_url, source, history))
    if pool is None:
        prepared = prepare(task, base_url, policy, changes is not None)
    else:
        task = replace(task, graph_files=_staging(store, graph_files))
        prepared = pool.submit(prepare, task, base_url, policy, changes is not None).result()
    return commit(prepared, store, base_url, reports_dir, policy, changes, history, accept_loss,
                  graph_files)


@dataclass(frozen=True)
class HarvestTask:
    """One source to read and check, with what the writing process knows about it."""

    source: Source
    history: FeedHistory | None = None
    withheld: frozenset[str] = frozenset()
    conditional: bool = True  # the store holds the source's events: an unchanged feed is skipped
    # where the published graph's dump files are made beside it (`sparql.graph_files`), if at all
    graph_files: GraphFiles | None = None


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
    staged: Staged | None = None  # the published graph's dump files, made from `published`


def _conditional(store: Store, base_url: str, source: Source, history: FeedHistory | None) -> bool:
    if history is None:
        return False
    return _published_event_count(store, identity.graph_iri(base_url, source.id)) > 0


def prepare(task: HarvestTask, base_url: str, policy: FetchPolicy,
            describe_events: bool = True) -> Prepared:
    """Fetch, parse, normalise, validate and describe one source; writes nothing but the feed
    history's archive, so it can run in a worker process."""
    with _cycle_collection_paused():
        return _prepare(task, base_url, policy, describe_events)


@contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """Python's cycle collector, paused while a feed is read: a feed makes hundreds of thousands
    of terms, tuples and dictionaries that live until its end, none of them in a cycle worth
    collecting, and each full collection walks all of them again (measured: 40 % of the CPU of
    `prepare`). It runs again, as usual, afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _prepare(task: HarvestTask, base_url: str, policy: FetchPolicy,
             describe_events: bool) -> Prepared:
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
    graph = checked.triples + source_description(source, base_url, checked.report.started_at)
    # every term of the named graph spelled once, as the store writes it: the named graph's
    # N-Triples and the change log's descriptions are written from these spellings
    spelled = spellings(distinct_objects(graph), terms)
    descriptions = {}
    if describe_events:
        descriptions = _descriptions(checked, spelled)
    data = ntriples(graph, spelled)
    staged = None
    if task.graph_files is not None:  # made here, in the worker, beside the others' work
        try:
            staged = task.graph_files.stage(identity.graph_iri(base_url, source.id), data)
        except OSError:
            staged = None  # the writer makes them, or the dumps do
    return Prepared(
        source, started, checked.report, NTriples(data, len(graph)),
        event_count=_with_start_date(checked.triples),
        descriptions=descriptions,
        quarantined={iri: _turtle(g, terms) for iri, g in checked.quarantined.items()},
        incoming=incoming, staged=staged)


def distinct_objects(triples: list[Triple]) -> list[Node]:
    """Each term object of the triples once, in the order met. By identity: a literal's hash is
    a Python call, and the normalised triples hold each repeated value as one object (equal ones
    left are merged by whoever reads them, as `spellings` does)."""
    return list({id(term): term for triple in triples for term in triple}.values())


def _descriptions(checked: Checked, spelled: dict[Node, str]) -> dict[str, str]:
    """Each published event's change-log description, canonical: from the walks `check_bytes`
    made when it has them, else from the published triples."""
    events = [URIRef(e.iri) for e in checked.report.events if e.status == "published"]
    if checked.index is not None and all(event in checked.described for event in events):
        return canonical_node_descriptions(
            checked.index, {str(event): checked.described[event] for event in events}, spelled)
    return canonical_descriptions(event_descriptions(checked.triples, checked.report))


_TURTLE_PREFIXES = {"schema": str(SCHEMA), "affiche": str(AFFICHE), "prov": str(PROV),
                    "xsd": str(XSD)}


def _turtle(graph: Graph, terms: OxTerms) -> str:
    """A quarantined event's description as Turtle, by pyoxigraph's writer (rdflib's costs
    milliseconds per event)."""
    return ox.serialize([ox.Triple(terms[s], terms[p], terms[o]) for s, p, o in graph],
                        format=ox.RdfFormat.TURTLE, prefixes=_TURTLE_PREFIXES).decode("utf-8")


def _with_start_date(triples: list[Triple]) -> int:
    start = {SCHEMA.startDate}  # a set: an IRI's hash is cached, equality is a Python call
    return len({s for s, p, _ in triples if p in start})


def commit(prepared: Prepared, store: Store, base_url: str, reports_dir: Path | None = None,
           policy: FetchPolicy = FetchPolicy(), changes: ChangeLog | None = None,
           history: FeedHistory | None = None, accept_loss: bool = False,
           graph_files: GraphFiles | None = None) -> Report:
    """Write what `prepare` made: the named graph in one transaction, the change log, the feed
    history and the report; or nothing but the report when a guard holds the harvest back.
    With `graph_files`, the graph's dump files are put beside the dumps (`_files_for`)."""
    try:
        return _commit(prepared, store, base_url, reports_dir, policy, changes, history,
                       accept_loss, graph_files)
    finally:
        GraphFiles.discard(prepared.staged)  # not kept: held back, failed, or other N-Triples


def _commit(prepared: Prepared, store: Store, base_url: str, reports_dir: Path | None,
            policy: FetchPolicy, changes: ChangeLog | None, history: FeedHistory | None,
            accept_loss: bool, graph_files: GraphFiles | None) -> Report:
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
            digests, unchanged = None, frozenset()
            if changes is not None:
                digests = digest_descriptions(prepared.descriptions)
                if previous:  # the events whose `harvestedAt` stays (harvester/harvest_times.py)
                    unchanged = changes.unchanged(source.id, digests)
            written = store.replace_graph(
                graph_iri, _for_store(store, graph_iri, prepared.published, unchanged))
            if changes is not None:
                changes.record_canonical(source.id, prepared.descriptions, digests=digests)
            if prepared.incoming is not None and history is not None:
                history.remember(prepared.incoming, report.archive, prepared.started)
            if graph_files is not None:
                _files_for(graph_files, graph_iri, written, prepared)
    if reports_dir is not None:
        save_report(report, reports_dir, prepared.quarantined if report.error is None else {})
    return report


def _staging(store: Store, graph_files: GraphFiles | None) -> GraphFiles | None:
    """Where workers make the graph's files: only for a store that stamps its graphs (a remote
    store's graphs are read back at dump time, whatever a worker made)."""
    return graph_files if isinstance(store, EmbeddedStore) else None


def _files_for(graph_files: GraphFiles, graph_iri: str, written: Written | None,
               prepared: Prepared) -> None:
    """The graph's dump files, for the stamp the store gave it: the worker's when the store took
    its N-Triples as they were (a new graph; a re-harvest that kept no `harvestedAt`), else made
    here from what the store wrote. Nothing when the store wrote nothing (the files made for the
    stamp it kept stay current) or cannot say what it wrote (a remote store: the dumps read it)."""
    if written is None or written.data is None:
        return
    staged, published = prepared.staged, prepared.published
    try:
        if staged is not None and published is not None and (
                written.data is published.data or written.data == published.data):
            graph_files.keep(staged, written.stamp)
            prepared.staged = None
        else:
            graph_files.write(graph_iri, written.data, written.stamp)
    except OSError as exc:  # the graph is written; the dumps will make its files from the store
        graph_files.forget(graph_iri)
        log.warning("%s: cannot write its dump files (%s); the next dump makes them", graph_iri, exc)


def _for_store(store: Store, graph_iri: str, published: NTriples,
               unchanged: frozenset[str]) -> Graph | NTriples:
    """The graph to write, the `harvestedAt` of the `unchanged` events kept as the store has it.

    The embedded store loads N-Triples as they are, `checked`: `prepare` wrote them from
    `changes.spellings`, through Oxigraph's own terms, and `kept_times` only puts back lines the
    store wrote; it keeps the times from the graph it reads anyway to write only what changed.
    Other stores take an rdflib graph, the times kept from the graph read from them first."""
    if isinstance(store, EmbeddedStore):
        amend = partial(kept_times, unchanged=unchanged) if unchanged else None
        return replace(published, checked=True, amend=amend)
    published = keep_harvest_times(store, graph_iri, published, unchanged)
    return Graph().parse(data=published.data, format="nt")


# Starting a worker process costs about a second of CPU (a fresh interpreter importing rdflib,
# pyoxigraph and the shapes): a harvest reads its sources here until it has spent that long.
WORKERS_AFTER_S = 1.0


def harvest_all(tasks: list[HarvestTask], store: Store, base_url: str,
                reports_dir: Path | None = None, policy: FetchPolicy = FetchPolicy(),
                changes: ChangeLog | None = None, workers: int = 1, accept_loss: bool = False,
                on_done: Callable[[Report], None] | None = None,
                workers_after_s: float = WORKERS_AFTER_S,
                graph_files: GraphFiles | None = None,
                summaries_only: bool = False) -> list[Report]:
    """Harvest several sources, reading and checking up to `workers` of them at once in worker
    processes; this process alone writes the store, the change log and the reports, one source
    at a time, in groups as they are ready (`WRITE_TOGETHER_BYTES`). Reports come back in the
    order of `tasks`.

    Sources are read in this process first, one after another; worker processes only start for
    those left once that has taken `workers_after_s` seconds (0: at once), so that a harvest of a
    few small or unchanged feeds (a cron job's) does not pay for starting them.

    With `graph_files`, each graph's dump files are made as it is written (`commit`).
    `summaries_only`: the reports returned are `Report.summarised` (`on_done` gets each whole),
    so that the harvest's memory does not grow with the events of all the sources."""
    reports: dict[int, Report] = {}
    started = time.perf_counter()
    inline = 0
    while inline < len(tasks) and (workers <= 1 or time.perf_counter() - started < workers_after_s):
        task = tasks[inline]
        reports[inline] = harvest(task.source, store, base_url, reports_dir, policy, changes,
                                  task.history, task.withheld, accept_loss,
                                  graph_files=graph_files)
        if on_done is not None:
            on_done(reports[inline])
        if summaries_only:
            reports[inline] = reports[inline].summarised()
        inline += 1
    if inline < len(tasks):
        _harvest_in_workers(enumerate(tasks[inline:], start=inline),
                            min(workers, len(tasks) - inline), reports, store, base_url,
                            reports_dir, policy, changes, accept_loss, on_done, graph_files,
                            summaries_only)
    return [reports[i] for i in range(len(tasks))]


# Sources read by workers are written in groups of about this many N-Triples bytes (or once the
# first of a group has waited `WRITE_TOGETHER_S`). Each new graph is one bulk load, i.e. one
# RocksDB ingestion, and the store (Oxigraph opens RocksDB with level-style compaction: level 0
# compacted at 2 files) merges level 0 into the next level after every second one, rewriting
# most of that level (Oxigraph's keys are hashes: every load overlaps all of it). Loads made in a
# row are merged together: on the 1M region's csv sources over a store of 600k events, one load
# every 1.5 s (the harvest's pace) cost 61 CPU-s of compaction, in groups of 8 sources 40 s, of 20
# sources 30 s, all in a row 20 s. A 1M harvest: compaction 259 -> 234 CPU-s, 604 -> 589 s. The
# price is memory: a group waits in the writing process (+125 MB at its peak at 1M).
WRITE_TOGETHER_BYTES = 48_000_000
WRITE_TOGETHER_S = 10.0


def _harvest_in_workers(queue: Iterator[tuple[int, HarvestTask]], workers: int,
                        reports: dict[int, Report], store: Store, base_url: str,
                        reports_dir: Path | None, policy: FetchPolicy, changes: ChangeLog | None,
                        accept_loss: bool, on_done: Callable[[Report], None] | None,
                        graph_files: GraphFiles | None, summaries_only: bool) -> None:
    """`harvest_all`'s sources left in `queue`, read by worker processes, written here in
    groups (`WRITE_TOGETHER_BYTES`), each source in the order its worker finished it."""
    tasks: dict[int, HarvestTask] = {}
    with worker_pool(workers) as pool:
        pending: dict = {}
        ready: list[tuple[int, Prepared]] = []  # read, waiting to be written with the next ones
        ready_since = 0.0

        def submit_next() -> None:
            for index, task in queue:
                tasks[index] = task
                conditional = _conditional(store, base_url, task.source, task.history)
                task = replace(task, conditional=conditional,
                               graph_files=_staging(store, graph_files))
                pending[pool.submit(prepare, task, base_url, policy, changes is not None)] = index
                return

        def write_ready() -> None:
            while ready:
                index, prepared = ready.pop(0)
                task = tasks.pop(index)
                reports[index] = commit(prepared, store, base_url, reports_dir, policy,
                                        changes, task.history, accept_loss, graph_files)
                if on_done is not None:
                    on_done(reports[index])
                if summaries_only:
                    reports[index] = reports[index].summarised()

        try:
            # one source ahead of the workers, no more, besides those waiting to be written
            for _ in range(workers + 1):
                submit_next()
            while pending:
                timeout = None if not ready else max(
                    0.0, ready_since + WRITE_TOGETHER_S - time.perf_counter())
                done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    try:
                        prepared = future.result()
                    except Exception:
                        write_ready()  # what was read before it is written, as it came
                        raise
                    if not ready:
                        ready_since = time.perf_counter()
                    ready.append((index, prepared))
                    submit_next()
                if (not pending or _group_bytes(ready) >= WRITE_TOGETHER_BYTES
                        or time.perf_counter() - ready_since >= WRITE_TOGETHER_S):
                    write_ready()
        finally:
            for _, prepared in ready:  # not written (a worker failed): their staged files go
                GraphFiles.discard(prepared.staged)


def _group_bytes(ready: list[tuple[int, Prepared]]) -> int:
    return sum(len(prepared.published.data) for _, prepared in ready if prepared.published)


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
                   prefixes=checked.prefixes, index=checked.index,
                   feed_events=checked.feed_events, described=checked.described)


def event_descriptions(published: Iterable[Triple], report: Report,
                       index: dict[Node, list[tuple[Node, Node]]] | None = None,
                       feed_events: frozenset[Node] = frozenset(),
                       described: dict[Node, list[Node]] | None = None) -> dict[str, list[Triple]]:
    """Each published event's own description (what the change log compares and keeps).

    With the whole feed's `node_index` and all its events (`Checked.index`, `.feed_events`), the
    descriptions are read from it rather than from a new index of `published`: the same triples,
    since the published triples are what the published events reach, the feed's other events
    (quarantined, withheld) stopped at; `described` are the walks `check_bytes` already made."""
    events = [URIRef(e.iri) for e in report.events if e.status == "published"]
    stop = frozenset(events)
    if index is None:
        index = node_index(published)
    else:
        stop |= feed_events
    described = described or {}
    return {str(event): triples_of(index, described[event]) if event in described
            else reach(index, [event], stop=stop) for event in events}


def _published_event_count(store: Store, graph_iri: str) -> int:
    rows = store.select(load_query("count_events_in_graph"), {"graph": URIRef(graph_iri)})
    return int(rows[0]["count"]) if rows else 0


def save_report(report: Report, reports_dir: Path, quarantined: dict[str, str]) -> None:
    """Keep the last report (with the quarantined events' data, as Turtle) for the organiser's
    pages, each distinct problem written once (`Report.to_file_json`; `load_report` reads it)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_file_json()
    data["quarantined_data"] = dict(quarantined)
    target = reports_dir / f"{report.source_id}.json"
    temporary = target.with_suffix(".json.tmp")
    # no indent: json's C encoder only writes compact JSON, several times faster than indented
    temporary.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    temporary.replace(target)
    if not report.unchanged:
        append_history(report, reports_dir, data["score"], data["summary"])


def append_history(report: Report, reports_dir: Path, score: float | None = None,
                   summary: dict[str, int] | None = None) -> None:
    """One JSON line per harvest in `reports/history/{source}.jsonl`: the score over time.
    `score` and `summary`, when the caller has them already, spare counting the events again."""
    history_dir = reports_dir / "history"
    history_dir.mkdir(parents=True, exist_ok=True)
    if summary is None:
        score, summary = report.score, report.summary
    line = {"started_at": report.started_at, "score": score, "error": report.error, **summary}
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
    """The source's last saved report, each event's problems written out as `Report.to_json`
    gives them; None when it was never harvested. A damaged file raises ValueError."""
    path = reports_dir / f"{source_id}.json"
    if not path.exists():
        return None
    return expand_report(json.loads(path.read_text(encoding="utf-8")))


def expand_report(data: dict) -> dict:
    """A saved report with each event's `problems` written out from its `problem_table` (each
    event a copy of its own: a reader may annotate them). A report saved before the table
    existed is returned as it is. A position outside the table raises ValueError."""
    if not isinstance(data, dict) or "problem_table" not in data:
        return data
    table = data.pop("problem_table")
    events = data.get("events")
    if not isinstance(table, list) or not isinstance(events, list):
        raise ValueError("damaged report: its problem table or its events are not lists")
    size = len(table)
    for event in events:
        positions = event.get("problems") if isinstance(event, dict) else None
        if not isinstance(positions, list) or not all(
                type(i) is int and 0 <= i < size and isinstance(table[i], dict) for i in positions):
            raise ValueError(f"damaged report: an event names problems {positions!r} that its "
                             f"table of {size} does not hold")
        event["problems"] = [dict(table[i]) for i in positions]
    return data
