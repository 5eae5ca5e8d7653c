"""The dumps: every format holds the same data, per-source files keep their graph and licence,
the listing (JSON, SHA256SUMS, DCAT) tells the truth, HEAD/Range/ETag let downloads resume, a
crash while writing leaves the previous dumps, snapshots are kept as the setting says, and a
harvest that changed nothing rewrites nothing."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from rdflib import Dataset, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF, VOID, XSD

from harvester.changes import ChangeLog
from harvester.pipeline import harvest
from harvester.sources import load_sources
from publisher.app import create_app
from publisher.cli import demo_config, harvest_sources
from publisher.dumps import INDEX, NQUADS, list_dumps, write_dumps
from publisher.settings import Settings
from sparql.store import EmbeddedStore

pytestmark = pytest.mark.anyio

BASE = "http://affiche.test"
SPDX = Namespace("http://spdx.org/rdf/terms#")
STABLE = ["affiche.nq.gz", "affiche.nt.gz", "affiche.ttl.gz", "affiche.jsonld.gz"]
PARSERS = {"affiche.nq.gz": "nquads", "affiche.nt.gz": "nt", "affiche.ttl.gz": "turtle",
           "affiche.jsonld.gz": "json-ld"}


class Published:
    def __init__(self, root: Path) -> None:
        self.settings = Settings(base_url=BASE, data_dir=root)
        self.store = EmbeddedStore(root / "store")
        self.log = ChangeLog(root)
        self.sources = load_sources(demo_config())
        for source in self.sources:
            harvest(source, self.store, BASE, self.settings.reports_dir, changes=self.log)
        self.files = write_dumps(self.store, self.settings.dumps_dir, changes=self.log)

    def client(self) -> httpx.AsyncClient:
        app = create_app(self.settings, store=self.store)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    data = Published(tmp_path_factory.mktemp("dumps"))
    yield data
    data.store.close()


@pytest.fixture
def fresh(tmp_path):
    data = Published(tmp_path)
    yield data
    data.store.close()


@pytest.fixture
async def http(published):
    async with published.client() as client:
        yield client


def read(body: bytes, name: str) -> Dataset:
    dataset = Dataset()
    dataset.parse(data=gzip.decompress(body), format=PARSERS.get(name, "nquads"))
    return dataset


def triples(dataset: Dataset) -> set:
    return {(s, p, o) for s, p, o, _ in dataset.quads((None, None, None, None))}


def store_quads(store: EmbeddedStore) -> Dataset:
    buffer = io.BytesIO()
    store.dump_nquads(buffer)
    return Dataset().parse(data=buffer.getvalue(), format="nquads")


# --- content ----------------------------------------------------------------------------------


async def test_every_format_holds_the_same_triples_as_the_store(published, http):
    expected = triples(store_quads(published.store))
    assert expected
    for name in STABLE:
        response = await http.get(f"/dumps/{name}")
        assert response.status_code == 200, name
        assert triples(read(response.content, name)) == expected, name


async def test_nquads_and_jsonld_keep_one_graph_per_source(published, http):
    graphs = {URIRef(f"{BASE}/graph/{s.id}") for s in published.sources}
    for name in ("affiche.nq.gz", "affiche.jsonld.gz"):
        dataset = read((await http.get(f"/dumps/{name}")).content, name)
        assert {g.identifier for g in dataset.graphs() if len(g)} == graphs, name


async def test_one_file_per_source_with_its_graph_and_licence(published, http):
    listing = {f["name"]: f for f in (await http.get("/dumps/", headers={"Accept": "application/json"})).json()}
    everything = store_quads(published.store)
    for source in published.sources:
        name = f"source-{source.id}.nq.gz"
        entry = listing[name]
        assert entry["source"] == source.id and entry["licenses"] == [source.license]
        dataset = read((await http.get(f"/dumps/{name}")).content, name)
        graph_iri = URIRef(f"{BASE}/graph/{source.id}")
        assert {g.identifier for g in dataset.graphs() if len(g)} == {graph_iri}
        assert set(dataset.graph(graph_iri)) == set(everything.graph(graph_iri))
        assert entry["triples"] == len(everything.graph(graph_iri))
    assert set(listing[NQUADS]["licenses"]) == {s.license for s in published.sources}


async def test_listed_triple_counts_and_checksums_are_true(http):
    listing = (await http.get("/dumps/", headers={"Accept": "application/json"})).json()
    lines = (await http.get("/dumps/SHA256SUMS")).text.splitlines()
    sums = {name: digest for digest, name in (line.split("  ") for line in lines)}
    for entry in listing:
        body = (await http.get(f"/dumps/{entry['name']}")).content
        assert len(body) == entry["size"]
        assert hashlib.sha256(body).hexdigest() == entry["sha256"] == sums[entry["name"]]
        if entry["name"].endswith(".nq.gz"):
            assert entry["triples"] == len(gzip.decompress(body).splitlines())


async def test_dcat_describes_every_distribution_with_its_licence(published, http):
    response = await http.get("/dumps/", headers={"Accept": "text/turtle"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/turtle")
    graph = Graph().parse(data=response.text, format="turtle")
    dataset = URIRef(f"{BASE}/dumps/#dataset")
    assert (dataset, RDF.type, DCAT.Dataset) in graph
    listing = list_dumps(published.settings.dumps_dir)
    for dump in listing:
        node = URIRef(f"{BASE}/dumps/{dump.name}")
        assert (dataset, DCAT.distribution, node) in graph
        assert graph.value(node, DCAT.byteSize).toPython() == dump.size
        checksum = graph.value(node, SPDX.checksum)
        assert str(graph.value(checksum, SPDX.checksumValue)) == dump.sha256
        assert graph.value(node, VOID.triples).toPython() == dump.triples
    licences = {str(o) for o in graph.objects(dataset, DCTERMS.license)}
    assert licences == {s.license for s in published.sources}
    per_source = URIRef(f"{BASE}/dumps/source-salle-erable.nq.gz")
    assert {str(o) for o in graph.objects(per_source, DCTERMS.license)} == {
        "https://creativecommons.org/licenses/by/4.0/"}
    feed = URIRef(f"{BASE}/feed")
    assert (dataset, DCAT.distribution, feed) in graph
    assert graph.value(dataset, URIRef("https://affiche.example/ns#feedTimestamp")) == Literal(
        published.log.position().timestamp, datatype=XSD.dateTime)


async def test_listing_page_shows_sizes_triples_and_licences(http):
    response = await http.get("/dumps/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    from lxml import html

    tree = html.fromstring(response.text)
    rows = tree.xpath("//tbody/tr")
    names = [r.xpath("string(td[1])") for r in rows]
    assert set(STABLE) <= set(names)
    nq = rows[names.index(NQUADS)]
    assert int(nq.xpath("string(td[3])")) > 0
    assert "creativecommons.org" in " ".join(nq.xpath("td[5]//a/@href"))


# --- downloads that resume -------------------------------------------------------------------


async def test_head_range_and_etag(http):
    full = await http.get("/dumps/affiche.nq.gz")
    etag = full.headers["etag"]
    assert full.headers["accept-ranges"] == "bytes"
    head = await http.head("/dumps/affiche.nq.gz")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(full.content)
    assert head.headers["etag"] == etag

    part = await http.get("/dumps/affiche.nq.gz", headers={"Range": "bytes=100-"})
    assert part.status_code == 206
    assert part.content == full.content[100:]
    assert part.headers["content-range"] == f"bytes 100-{len(full.content) - 1}/{len(full.content)}"

    resumed = await http.get("/dumps/affiche.nq.gz", headers={"Range": "bytes=100-", "If-Range": etag})
    assert resumed.status_code == 206 and resumed.content == full.content[100:]
    changed = await http.get("/dumps/affiche.nq.gz", headers={"Range": "bytes=100-", "If-Range": '"other"'})
    assert changed.status_code == 200 and changed.content == full.content

    cached = await http.get("/dumps/affiche.nq.gz", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    stale = await http.get("/dumps/affiche.nq.gz", headers={"If-None-Match": '"old"'})
    assert stale.status_code == 200


async def test_a_range_past_the_end_is_416(http):
    size = int((await http.head("/dumps/affiche.nq.gz")).headers["content-length"])
    response = await http.get("/dumps/affiche.nq.gz", headers={"Range": f"bytes={size + 10}-"})
    assert response.status_code == 416


async def test_dump_says_how_far_the_feed_it_includes_goes(published, http):
    response = await http.get("/dumps/affiche.nq.gz")
    assert response.headers["x-affiche-feed-timestamp"] == published.log.position().timestamp


# --- writing safely ---------------------------------------------------------------------------


class CrashingStore:
    """The real store, except that one graph's dump dies halfway through."""

    def __init__(self, store: EmbeddedStore, on_dump=None) -> None:
        self._store, self._on_dump = store, on_dump

    def __getattr__(self, name):
        return getattr(self._store, name)

    def dump_graph(self, out, graph_iri, rdf_format="nt"):
        buffer = io.BytesIO()
        self._store.dump_graph(buffer, graph_iri, rdf_format)
        out.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        if self._on_dump:
            self._on_dump()
        raise OSError("disk unplugged")


def add_extra_graph(store: EmbeddedStore) -> None:
    store.replace_graph(f"{BASE}/graph/extra", Graph().parse(
        data=f'<{BASE}/event/extra-1> <http://schema.org/name> "Bal des Lucioles"@fr .', format="nt"))


def snapshot_of(dumps_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(dumps_dir.iterdir()) if p.is_file()}


def test_a_crash_while_writing_leaves_the_previous_dumps(fresh):
    dumps_dir = fresh.settings.dumps_dir
    before = snapshot_of(dumps_dir)
    add_extra_graph(fresh.store)  # something changed since
    with pytest.raises(OSError, match="disk unplugged"):
        write_dumps(CrashingStore(fresh.store), dumps_dir, changes=fresh.log)
    assert snapshot_of(dumps_dir) == before  # same files, same bytes, no temporary left over
    assert [f.name for f in list_dumps(dumps_dir)] == [f.name for f in fresh.files]


def test_a_dump_being_written_is_never_what_is_served(fresh):
    dumps_dir = fresh.settings.dumps_dir
    served_during = []

    def look():  # halfway through the new dump, the stable URL still serves the complete old one
        body = (dumps_dir / NQUADS).read_bytes()
        served_during.append((hashlib.sha256(body).hexdigest(), len(gzip.decompress(body))))

    old = {f.name: f for f in fresh.files}[NQUADS]
    add_extra_graph(fresh.store)  # the new N-Quads dump, complete by then, differs from the old
    with pytest.raises(OSError):
        write_dumps(CrashingStore(fresh.store, on_dump=look), dumps_dir)
    assert served_during and all(digest == old.sha256 for digest, _ in served_during)
    files = write_dumps(fresh.store, dumps_dir)  # and a good run replaces it
    assert {f.name: f for f in files}[NQUADS].sha256 != old.sha256
    dataset = Dataset().parse(data=gzip.decompress((dumps_dir / NQUADS).read_bytes()), format="nquads")
    assert URIRef(f"{BASE}/graph/extra") in {g.identifier for g in dataset.graphs()}


def test_snapshots_are_dated_and_kept_as_the_setting_says(fresh):
    dumps_dir = fresh.settings.dumps_dir
    start = date(2027, 3, 1)
    for day in range(4):
        write_dumps(fresh.store, dumps_dir, snapshots=2, today=start + timedelta(days=day))
    dated = sorted(f.name for f in list_dumps(dumps_dir) if f.snapshot)
    assert dated == ["affiche-2027-03-03.nq.gz", "affiche-2027-03-04.nq.gz"]
    latest = {f.name: f for f in list_dumps(dumps_dir)}
    assert latest["affiche-2027-03-04.nq.gz"].sha256 == latest[NQUADS].sha256
    write_dumps(fresh.store, dumps_dir, snapshots=0, today=start + timedelta(days=5))
    assert not [f for f in list_dumps(dumps_dir) if f.snapshot]


async def test_snapshots_are_immutable_and_stable_names_are_not(fresh):
    write_dumps(fresh.store, fresh.settings.dumps_dir, snapshots=3, today=date(2027, 3, 1))
    async with fresh.client() as http:
        snapshot = await http.get("/dumps/affiche-2027-03-01.nq.gz")
        stable = await http.get("/dumps/affiche.nq.gz")
    assert "immutable" in snapshot.headers["cache-control"]
    assert "immutable" not in stable.headers["cache-control"]
    assert snapshot.content == stable.content


def test_index_is_written_last_and_names_the_sources(fresh):
    index = json.loads((fresh.settings.dumps_dir / INDEX).read_text(encoding="utf-8"))
    assert {s["id"] for s in index["sources"]} == {s.id for s in fresh.sources}
    assert index["feed"]["seq"] == fresh.log.position().seq
    newest_dump = max(os.stat(fresh.settings.dumps_dir / n).st_mtime_ns for n in STABLE)
    assert os.stat(fresh.settings.dumps_dir / INDEX).st_mtime_ns >= newest_dump


# --- rewritten when, and only when, a harvest changed something ------------------------------


def test_dumps_are_rewritten_only_after_a_harvest_that_changed_something(tmp_path):
    feed = tmp_path / "feed.csv"
    config = tmp_path / "sources.toml"
    config.write_text('[[source]]\nid = "chapiteau"\nname = "Le Chapiteau Bleu (Namur)"\n'
                      'path = "feed.csv"\nformat = "csv"\ntimezone = "Europe/Brussels"\n'
                      'license = "https://creativecommons.org/licenses/by/4.0/"\n', encoding="utf-8")
    header = "identifiant;titre;debut;lieu;adresse;code_postal;ville;pays;description\n"
    line = "cb-1;Cirque d'hiver;12/12/2027 15h00;Le Chapiteau Bleu;3 quai de Meuse;5000;Namur;BE;{}\n"
    settings = Settings(base_url=BASE, data_dir=tmp_path / "data")
    sources = load_sources(config)
    nq = settings.dumps_dir / NQUADS

    feed.write_text(header + line.format("Acrobates et clowns."), encoding="utf-8")
    harvest_sources(settings, sources, show_progress=False)
    first = os.stat(nq).st_mtime_ns, nq.read_bytes()

    harvest_sources(settings, sources, show_progress=False)  # nothing changed
    assert (os.stat(nq).st_mtime_ns, nq.read_bytes()) == first

    feed.write_text(header + line.format("Acrobates, clowns et fanfare."), encoding="utf-8")
    harvest_sources(settings, sources, show_progress=False)
    assert nq.read_bytes() != first[1]
    dataset = Dataset().parse(data=gzip.decompress(nq.read_bytes()), format="nquads")
    description = URIRef("http://schema.org/description")
    descriptions = {str(o) for _, _, o, _ in dataset.quads((None, description, None, None))}
    assert "Acrobates, clowns et fanfare." in descriptions


def test_temporary_files_of_a_killed_writer_are_removed_on_the_next_run(tmp_path):
    import subprocess
    import sys

    from publisher.dumps import remove_orphans

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f".affiche.nq.gz.{dead.pid}.tmp"
    orphan.write_bytes(b"half a dump")
    alive = tmp_path / f".affiche.nt.gz.{os.getppid()}.tmp"  # a writer that still runs
    alive.write_bytes(b"being written")
    assert remove_orphans(tmp_path) == [orphan]
    assert not orphan.exists() and alive.exists()
