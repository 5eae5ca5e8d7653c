"""Each graph's dump files, made when the graph is written, and the dumps put together from them:
the same triples as the store in every format, made again whenever the graph changed (whoever
changed it), never read from the store when they are current, and readable as one file by the
tools people use on dumps."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import sys

import pytest
from rdflib import Dataset, Graph, URIRef
from rdflib.compare import isomorphic

from bench import synthetic
from harvester.changes import ChangeLog
from harvester.fetch import FetchPolicy
from harvester.incremental import FeedHistory
from harvester.pipeline import HarvestTask, harvest, harvest_all, worker_pool
from harvester.sources import Source, load_sources
from publisher.dumps import JSONLD, NQUADS, NTRIPLES, PARTS, TURTLE, graph_files, write_dumps
from sparql.graph_files import GraphFiles, members_of
from sparql.store import EmbeddedStore, NTriples

BASE = "http://affiche.test"
GRAPH = f"{BASE}/graph/cirque-des-vents"
# Invented: the Cirque des Vents (Rimouski); literals that look like line ends, escapes, a blank node
NT = (
    f'<{BASE}/event/1> <http://schema.org/name> "Le Grand Chapiteau ."@fr .\n'
    f'<{BASE}/event/1> <http://schema.org/description> "Deux lignes\\nd\'acrobates . "@fr .\n'
    f'<{BASE}/event/1> <http://schema.org/offers> _:Noffre1 .\n'
    '_:Noffre1 <http://schema.org/price> "12.50"^^<http://www.w3.org/2001/XMLSchema#decimal> .\n'
    f'<{BASE}/event/2> <http://schema.org/name> "Voltige \\"nocturne\\"" .\n'
).encode()
FORMATS = {"nq": "nquads", "nt": "nt", "ttl": "turtle", "jsonld": "json-ld"}


def parsed(member: bytes, kind: str) -> Dataset:
    dataset = Dataset()
    dataset.parse(data=gzip.decompress(member), format=FORMATS[kind])
    return dataset


def triples_of(dataset: Dataset) -> Graph:
    graph = Graph()
    for s, p, o, _ in dataset.quads((None, None, None, None)):
        graph.add((s, p, o))
    return graph


# --- one graph's members -----------------------------------------------------------------------


def test_members_hold_the_graph_in_every_format():
    members, count = members_of(GRAPH, NT)
    expected = Graph().parse(data=NT.decode(), format="nt")
    assert count == 5 == len(expected)
    for kind, member in members.items():
        dataset = parsed(member, kind)
        assert isomorphic(triples_of(dataset), expected), kind
        if kind in ("nq", "jsonld"):  # the graph's name travels with its triples
            assert {g.identifier for g in dataset.graphs() if len(g)} == {URIRef(GRAPH)}, kind


def test_other_layouts_are_written_one_triple_a_line():
    untidy = b"# a comment\n\n" + NT.replace(b" .\n", b".\n", 2).rstrip(b"\n")
    members, count = members_of(GRAPH, untidy)
    assert count == 5
    lines = gzip.decompress(members["nq"]).decode().splitlines()
    assert len(lines) == 5 and all(line.endswith(f" <{GRAPH}> .") for line in lines)
    assert isomorphic(triples_of(parsed(members["nt"], "nt")),
                      Graph().parse(data=NT.decode(), format="nt"))


def test_n_triples_that_do_not_parse_are_refused():
    with pytest.raises(SyntaxError):
        members_of(GRAPH, NT + b'<http://affiche.test/event/3> <http://schema.org/name> "open .\n')


# --- the store's stamps --------------------------------------------------------------------------


def test_a_graphs_stamp_changes_with_every_write_and_only_then(tmp_path):
    store = EmbeddedStore(tmp_path / "store")
    plain = b"".join(line for line in NT.splitlines(keepends=True) if b"_:" not in line)
    first = store.replace_graph(GRAPH, NTriples(plain, 3))
    assert first.stamp and store.stamp(GRAPH) == first.stamp and first.data == plain
    # (a graph with blank nodes is always written whole again: replacing_update)
    again = store.replace_graph(GRAPH, NTriples(plain, 3))
    assert again.data is None and again.stamp == first.stamp  # nothing written
    changed = plain.replace(b"Voltige", b"Trapeze")
    second = store.replace_graph(GRAPH, NTriples(changed, 3))
    assert second.stamp not in (None, first.stamp) and second.data == changed
    store.close()
    reopened = EmbeddedStore(tmp_path / "store")  # kept with the store
    assert reopened.stamp(GRAPH) == second.stamp
    reopened.drop_graph(GRAPH)
    assert reopened.stamp(GRAPH) is None
    reopened.close()


def test_a_write_that_fails_leaves_the_graph_without_a_stamp(tmp_path):
    store = EmbeddedStore(tmp_path / "store")
    store.replace_graph(GRAPH, NTriples(NT, 5))
    with pytest.raises(SyntaxError):
        store.replace_graph(GRAPH, NTriples(NT + b"<not closed .\n", 6))
    assert store.stamp(GRAPH) is None  # so whatever was made from the graph is made again
    files = GraphFiles(tmp_path / "parts")
    files.write(GRAPH, NT, "an old stamp")
    assert files.current(GRAPH, store.stamp(GRAPH)) is None
    store.close()


# --- made by the harvest, put together by the dumps ---------------------------------------------


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """Six small sources of every format (shared venues, invalid events…)."""
    directory = tmp_path_factory.mktemp("region")
    return load_sources(synthetic.write_region(synthetic.plan_region(600, seed=21), directory))


class NoReading:
    """The real store, counting (or refusing) what would read a graph back out of it."""

    def __init__(self, store: EmbeddedStore, refuse: bool = True, stamps: bool = True) -> None:
        self._store, self.refuse, self.stamps, self.read = store, refuse, stamps, []

    def __getattr__(self, name):
        return getattr(self._store, name)

    def stamp(self, graph_iri):
        return self._store.stamp(graph_iri) if self.stamps else None

    def dump_graph(self, out, graph_iri, rdf_format="nt"):
        self.read.append(graph_iri)
        if self.refuse:
            raise AssertionError(f"{graph_iri} read back from the store")
        self._store.dump_graph(out, graph_iri, rdf_format)

    def dump_nquads(self, out):
        raise AssertionError("the whole store read back")


def store_graph(store: EmbeddedStore, graph_iri: str) -> Graph:
    out = io.BytesIO()
    store.dump_graph(out, graph_iri, "nt")
    return Graph().parse(data=out.getvalue().decode("utf-8"), format="nt")


def dumped(path, name: str) -> Dataset:
    dataset = Dataset()
    formats = {NQUADS: "nquads", NTRIPLES: "nt", TURTLE: "turtle", JSONLD: "json-ld"}
    dataset.parse(data=gzip.decompress(path.read_bytes()), format=formats[name])
    return dataset


def test_a_harvest_in_workers_makes_the_files_and_the_dumps_need_not_read_the_store(region, tmp_path):
    store, dumps_dir = EmbeddedStore(tmp_path / "store"), tmp_path / "dumps"
    tasks = [HarvestTask(s, FeedHistory(tmp_path / "harvest", s.id)) for s in region]
    reports = harvest_all(tasks, store, BASE, tmp_path / "reports", FetchPolicy(), ChangeLog(tmp_path),
                          workers=2, workers_after_s=0, graph_files=graph_files(dumps_dir))
    assert all(r.error is None for r in reports)
    parts = graph_files(dumps_dir)
    for graph_iri in store.graphs():
        assert parts.current(graph_iri, store.stamp(graph_iri)) is not None, graph_iri
        with gzip.open(parts.path(graph_iri, "nt")) as member:
            assert isomorphic(Graph().parse(data=member.read().decode(), format="nt"),
                              store_graph(store, graph_iri)), graph_iri
    assert not list((dumps_dir / PARTS / ".staging").iterdir())  # every staged file kept

    files = write_dumps(NoReading(store), dumps_dir)
    everything = Graph()
    for graph_iri in store.graphs():
        everything += store_graph(store, graph_iri)
    for name in (NQUADS, NTRIPLES, TURTLE, JSONLD):
        assert isomorphic(triples_of(dumped(dumps_dir / name, name)), everything), name
    listed = {f.name: f for f in files}  # a place shared by two sources counts in each graph
    assert listed[NQUADS].triples == sum(len(store_graph(store, g)) for g in store.graphs())
    store.close()


def test_a_re_harvest_keeping_harvest_times_makes_the_files_of_what_the_store_holds(tmp_path):
    # Invented: the Salle des Tanneurs (Namur). The second harvest keeps the unchanged event's
    # `harvestedAt` as the store has it, so the store does not hold what the worker wrote.
    feed = tmp_path / "tanneurs.csv"
    source = Source(id="tanneurs", name="Salle des Tanneurs", path=feed, format="csv",
                    timezone="Europe/Brussels")
    header = "identifiant;titre;debut;lieu;adresse;code_postal;ville;pays\n"
    line = "t-{0};{1};1{0}/05/2027 20h00;Salle des Tanneurs;5 rue des Tanneurs;5000;Namur;BE\n"
    store, changes, dumps_dir = EmbeddedStore(tmp_path / "store"), ChangeLog(tmp_path), tmp_path / "dumps"
    graph_iri = f"{BASE}/graph/tanneurs"
    with worker_pool(1) as pool:
        for titles in (["Jazz", "Contes"], ["Jazz", "Contes d'hiver"]):
            feed.write_text(header + "".join(line.format(i, t) for i, t in enumerate(titles)),
                            encoding="utf-8")
            report = harvest(source, store, BASE, tmp_path / "reports", changes=changes, pool=pool,
                             graph_files=graph_files(dumps_dir))
            assert report.error is None and report.summary["published"] == 2
            parts = graph_files(dumps_dir)
            assert parts.current(graph_iri, store.stamp(graph_iri)) is not None
            with gzip.open(parts.path(graph_iri, "nq")) as member:
                held = Dataset().parse(data=member.read().decode(), format="nquads")
            assert isomorphic(triples_of(held), store_graph(store, graph_iri))
    store.close()


def test_a_graph_written_by_something_else_is_read_again_and_only_it(region, tmp_path):
    store, dumps_dir = EmbeddedStore(tmp_path / "store"), tmp_path / "dumps"
    for source in region[:3]:
        harvest(source, store, BASE, graph_files=graph_files(dumps_dir))
    write_dumps(NoReading(store), dumps_dir)
    # a withdrawal, say, replaces one graph without making its files
    withdrawn = store.graphs()[0]
    kept = Graph().parse(data=f'<{BASE}/event/x> <http://schema.org/name> "Reste"@fr .', format="nt")
    store.replace_graph(withdrawn, kept)
    reading = NoReading(store, refuse=False)
    write_dumps(reading, dumps_dir)
    assert reading.read == [withdrawn]
    assert isomorphic(triples_of(dumped(dumps_dir / f"source-{withdrawn.rsplit('/', 1)[-1]}.nq.gz",
                                        NQUADS)), kept)
    # a store that cannot tell (a remote one) has every graph read for every dump
    reading = NoReading(store, refuse=False, stamps=False)
    write_dumps(reading, dumps_dir)
    assert sorted(reading.read) == store.graphs()
    reading = NoReading(store, refuse=False)  # files made for no stamp are current for none
    write_dumps(reading, dumps_dir)
    assert sorted(reading.read) == store.graphs()
    # a graph gone from the store takes its files with it
    store.drop_graph(withdrawn)
    write_dumps(NoReading(store), dumps_dir)
    parts = graph_files(dumps_dir)
    assert not parts.path(withdrawn, "nq").exists() and parts.record(withdrawn) is None
    assert not (dumps_dir / f"source-{withdrawn.rsplit('/', 1)[-1]}.nq.gz").exists()
    store.close()


def test_staged_files_of_a_killed_worker_are_removed_and_a_running_ones_kept(tmp_path):
    parts = GraphFiles(tmp_path / "parts")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    staging = tmp_path / "parts" / ".staging"
    staging.mkdir(parents=True)
    orphan = staging / f"{parts.stem(GRAPH)}.{dead.pid}.1.nq.gz"
    orphan.write_bytes(b"half")
    staged = parts.stage(GRAPH, NT)  # this process: still running
    parts.remove_others({GRAPH})
    assert not orphan.exists() and all(p.exists() for p in staged.paths.values())
    parts.discard(staged)
    assert not any(p.exists() for p in staged.paths.values())


def test_an_empty_store_gives_valid_empty_dumps(tmp_path):
    store = EmbeddedStore(tmp_path / "store")
    write_dumps(store, tmp_path / "dumps")
    for name in (NQUADS, NTRIPLES, TURTLE):
        assert gzip.decompress((tmp_path / "dumps" / name).read_bytes()) == b"", name
    assert json.loads(gzip.decompress((tmp_path / "dumps" / JSONLD).read_bytes())) == []
    store.close()


@pytest.mark.skipif(shutil.which("gzip") is None, reason="no gzip command")
def test_the_command_line_gzip_reads_a_dump_as_one_file(region, tmp_path):
    store, dumps_dir = EmbeddedStore(tmp_path / "store"), tmp_path / "dumps"
    for source in region[:3]:
        harvest(source, store, BASE, graph_files=graph_files(dumps_dir))
    write_dumps(store, dumps_dir)
    for name in (NQUADS, JSONLD):
        path = dumps_dir / name
        subprocess.run(["gzip", "-t", str(path)], check=True)
        text = subprocess.run(["gzip", "-dc", str(path)], check=True, capture_output=True).stdout
        assert text == gzip.decompress(path.read_bytes())
    graphs = json.loads(gzip.decompress((dumps_dir / JSONLD).read_bytes()))
    assert sorted(g["@id"] for g in graphs) == store.graphs()
    store.close()


def test_a_damaged_record_or_stamps_file_makes_the_files_again(region, tmp_path):
    store, dumps_dir = EmbeddedStore(tmp_path / "store"), tmp_path / "dumps"
    harvest(region[0], store, BASE, graph_files=graph_files(dumps_dir))
    [graph_iri] = store.graphs()
    parts = graph_files(dumps_dir)
    (dumps_dir / PARTS / f"{parts.stem(graph_iri)}.json").write_text("{not json", encoding="utf-8")
    reading = NoReading(store, refuse=False)
    write_dumps(reading, dumps_dir)
    assert reading.read == [graph_iri]  # made again from the store, and current after that
    write_dumps(NoReading(store), dumps_dir)
    store.close()
    (tmp_path / "store" / "affiche-stamps.json").write_text("[1, 2", encoding="utf-8")
    reopened = EmbeddedStore(tmp_path / "store")
    assert reopened.stamp(graph_iri) is None  # unknown: whatever was made from it is made again
    reading = NoReading(reopened, refuse=False)
    write_dumps(reading, dumps_dir)
    assert reading.read == [graph_iri]
    assert isomorphic(triples_of(dumped(dumps_dir / NQUADS, NQUADS)), store_graph(reopened, graph_iri))
    reopened.close()
