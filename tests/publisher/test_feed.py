"""The change log and the /feed LDES: members for creations, updates and removals, TREE pages,
404 for unknown cursors, and a follower that replays the feed from a dump's time onto the dump
and ends with exactly the current graph (our own Python follower, and the ldes-client of the npm
registry when it is installed)."""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from rdflib import Dataset, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, RDF, XSD

from harvester.changes import ChangeLog, without_harvest_time
from harvester.pipeline import harvest
from harvester.sources import Source
from ontology import AFFICHE, SCHEMA
from publisher.app import create_app
from publisher.dumps import write_dumps
from publisher.settings import Settings
from sparql.store import EmbeddedStore

from ..conftest import free_port

BASE = "http://affiche.test"
LDES = Namespace("https://w3id.org/ldes#")
TREE = Namespace("https://w3id.org/tree#")
AS = Namespace("https://www.w3.org/ns/activitystreams#")
TRIG = {"Accept": "application/trig"}

pytestmark = pytest.mark.anyio

HEADER = ("identifiant;titre;description;debut;fin;lieu;adresse;code_postal;ville;pays;prix;devise;"
          "organisateur;discipline;langue\n")
VENUE = "La Grange aux Notes;12 rue des Tanneurs;4000;Liège;BE"


def row(ident: str, title: str, description: str, start: str, price: str = "12") -> str:
    return f"{ident};{title};{description};{start};;{VENUE};{price};EUR;La Grange aux Notes;Musique;fr\n"


VERSION_1 = HEADER + "".join([
    row("gan-01", "Quatuor Meuse", "Haydn et Ysaÿe au bord de l'eau.", "14/05/2027 20h00"),
    row("gan-02", "Nuit du piano", "Trois pianistes, une nuit.", "21/05/2027 21h00"),
    row("gan-03", "Chorale des Coteaux", "Chants populaires wallons.", "28/05/2027 18h00", "gratuit"),
])
# gan-01 changes its description, gan-02 goes away, gan-04 arrives, gan-03 stays as it was
VERSION_2 = HEADER + "".join([
    row("gan-01", "Quatuor Meuse", "Haydn, Ysaÿe et Franck au bord de l'eau.", "14/05/2027 20h00"),
    row("gan-03", "Chorale des Coteaux", "Chants populaires wallons.", "28/05/2027 18h00", "gratuit"),
    row("gan-04", "Bal folk", "Bourrées et scottishs, initiation à 19 h.", "04/06/2027 19h00", "8"),
])
# gan-02 comes back, gan-03 changes its price
VERSION_3 = HEADER + "".join([
    row("gan-01", "Quatuor Meuse", "Haydn, Ysaÿe et Franck au bord de l'eau.", "14/05/2027 20h00"),
    row("gan-02", "Nuit du piano", "Trois pianistes, une nuit.", "21/05/2027 21h00"),
    row("gan-03", "Chorale des Coteaux", "Chants populaires wallons.", "28/05/2027 18h00", "5"),
    row("gan-04", "Bal folk", "Bourrées et scottishs, initiation à 19 h.", "04/06/2027 19h00", "8"),
])
OTHER = HEADER + row("cq-01", "Conte du Québec", "Contes de la Gaspésie, en français.", "10/06/2027 15h00")
OTHER_2 = HEADER + row("cq-02", "Veillée de contes", "Contes de la Côte-Nord, pour toute la famille.",
                      "17/06/2027 15h00")


class Site:
    """A data directory with a store, a change log and one or two CSV sources to rewrite."""

    def __init__(self, root: Path, base_url: str = BASE, page_size: int = 2) -> None:
        self.root = root
        self.settings = Settings(base_url=base_url, data_dir=root / "data", feed_page_size=page_size)
        self.store = EmbeddedStore(self.settings.data_dir / "store")
        self.log = ChangeLog(self.settings.data_dir, page_size=page_size)
        self.sources = {
            "grange": Source(id="grange", name="La Grange aux Notes (Liège)", path=root / "grange.csv",
                             format="csv", timezone="Europe/Brussels",
                             license="https://creativecommons.org/licenses/by/4.0/"),
            "conteurs": Source(id="conteurs", name="Les Conteurs du Fleuve (Québec)",
                               path=root / "conteurs.csv", format="csv", timezone="America/Toronto",
                               license="https://creativecommons.org/publicdomain/zero/1.0/"),
        }

    def publish(self, source_id: str, text: str) -> None:
        source = self.sources[source_id]
        source.path.write_text(text, encoding="utf-8")
        report = harvest(source, self.store, self.settings.base_url, self.settings.reports_dir,
                         changes=self.log)
        assert report.error is None, report.error

    def dump(self):
        return write_dumps(self.store, self.settings.dumps_dir, changes=self.log)

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path)
    yield site
    site.close()


def client_for(site: Site) -> httpx.AsyncClient:
    app = create_app(site.settings, store=site.store)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=site.settings.base_url)


def event_iri(site: Site, ident: str) -> str:
    report = json.loads((site.settings.reports_dir / "grange.json").read_text(encoding="utf-8"))
    names = {"gan-01": "Quatuor Meuse", "gan-02": "Nuit du piano", "gan-03": "Chorale des Coteaux",
             "gan-04": "Bal folk"}
    return next(e["iri"] for e in report["events"] if e["name"] == names[ident])


# --- the change log -------------------------------------------------------------------------


def test_harvests_become_created_updated_removed_members(site):
    site.publish("grange", VERSION_1)
    first = site.log.members_after(None)
    assert sorted(m.kind for m in first) == ["created"] * 3
    quatuor, piano = event_iri(site, "gan-01"), event_iri(site, "gan-02")

    site.publish("grange", VERSION_2)
    second = site.log.members_after(first[-1].timestamp)
    kinds = {m.event: m.kind for m in second}
    assert kinds[quatuor] == "updated" and kinds[piano] == "removed"
    assert sorted(kinds.values()) == ["created", "removed", "updated"]  # gan-03 did not change
    updated = next(m for m in second if m.kind == "updated")
    assert {str(o) for o in updated.graph().objects(URIRef(quatuor), SCHEMA.description)} == {
        "Haydn, Ysaÿe et Franck au bord de l'eau."}
    removed = next(m for m in second if m.kind == "removed")
    assert len(removed.graph()) == 0
    assert site.log.removed_at(piano) == removed.timestamp
    assert site.log.removed_at(quatuor) is None
    assert site.log.removed_at(BASE + "/event/never-seen") is None

    site.publish("grange", VERSION_3)  # the piano night is back
    assert site.log.removed_at(piano) is None
    back = [m for m in site.log.members_after(second[-1].timestamp) if m.event == piano]
    assert [m.kind for m in back] == ["created"]


def test_an_unchanged_feed_records_nothing(site):
    site.publish("grange", VERSION_1)
    position = site.log.position()
    time.sleep(1.1)  # a later harvest time: harvestedAt moves, the events do not
    site.publish("grange", VERSION_1)
    assert site.log.position() == position


def test_sources_do_not_remove_each_others_events(site):
    site.publish("grange", VERSION_1)
    site.publish("conteurs", OTHER)
    kinds = [m.kind for m in site.log.members_after(None)]
    assert kinds == ["created"] * 4


def test_timestamps_only_move_forward_and_pages_fill_up(tmp_path):
    log = ChangeLog(tmp_path, page_size=2)
    later = datetime(2027, 1, 2, tzinfo=timezone.utc)
    graphs = {f"{BASE}/event/e{i}": _tiny(f"{BASE}/event/e{i}", f"n{i}") for i in range(3)}
    first = log.record("s", graphs, now=later)
    # the clock goes back: the next members are still after the first ones
    second = log.record("s", {iri: _tiny(iri, "changed") for iri in graphs},
                        now=later - timedelta(hours=1))
    assert all(m.timestamp > first[-1].timestamp for m in second)
    assert [m.page for m in first + second] == [0, 0, 1, 1, 2, 2]
    assert log.last_page() == 2
    assert [m.seq for m in log.page(1)] == [3, 4]


def test_harvest_time_alone_is_not_a_change(tmp_path):
    log = ChangeLog(tmp_path)
    iri = f"{BASE}/event/e1"
    one, two = _tiny(iri, "Concert"), _tiny(iri, "Concert")
    one.add((URIRef(iri), AFFICHE.harvestedAt, Literal("2027-01-01T00:00:00+00:00", datatype=XSD.dateTime)))
    two.add((URIRef(iri), AFFICHE.harvestedAt, Literal("2027-01-02T00:00:00+00:00", datatype=XSD.dateTime)))
    assert len(log.record("s", {iri: one})) == 1
    assert log.record("s", {iri: two}) == []
    assert len(log.record("s", {iri: _tiny(iri, "Concert annulé")})) == 1


def test_an_empty_log_answers_without_creating_anything(tmp_path):
    log = ChangeLog(tmp_path / "nowhere")
    assert log.removed_at(f"{BASE}/event/e1") is None
    assert log.position().seq == 0 and log.last_page() == 0 and log.page(0) == []
    assert not (tmp_path / "nowhere").exists()


def _tiny(iri: str, name: str) -> Graph:
    graph = Graph()
    graph.add((URIRef(iri), RDF.type, SCHEMA.Event))
    graph.add((URIRef(iri), SCHEMA.name, Literal(name, lang="fr")))
    return graph


# --- /feed ----------------------------------------------------------------------------------


def parse(response: httpx.Response) -> Dataset:
    dataset = Dataset()
    dataset.parse(data=response.content, format="trig")
    return dataset


@pytest.fixture
async def three_harvests(site):
    site.publish("grange", VERSION_1)
    site.publish("grange", VERSION_2)
    site.publish("grange", VERSION_3)
    async with client_for(site) as http:
        yield site, http


async def test_feed_root_describes_the_stream(three_harvests):
    site, http = three_harvests
    response = await http.get("/feed", headers=TRIG)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/trig")
    dataset = parse(response)
    stream = URIRef(BASE + "/feed")
    assert (stream, RDF.type, LDES.EventStream) in dataset
    assert (stream, LDES.timestampPath, DCTERMS.created) in dataset
    assert (stream, LDES.versionOfPath, DCTERMS.isVersionOf) in dataset
    assert (stream, TREE.view, URIRef(BASE + "/feed/0")) in dataset


async def test_pages_link_forward_by_time_and_old_pages_are_immutable(three_harvests):
    site, http = three_harvests
    last = site.log.last_page()
    assert last >= 2  # 3 + 3 + 2 members, two per page
    for number in range(last + 1):
        response = await http.get(f"/feed/{number}", headers=TRIG)
        assert response.status_code == 200
        dataset = parse(response)
        node = URIRef(f"{BASE}/feed/{number}")
        assert (node, RDF.type, TREE.Node) in dataset
        relations = list(dataset.objects(node, TREE.relation))
        cache = response.headers["cache-control"]
        if number < last:
            assert "immutable" in cache
            (relation,) = relations
            assert (relation, RDF.type, TREE.GreaterThanOrEqualToRelation) in dataset
            assert dataset.value(relation, TREE.path) == DCTERMS.created
            assert dataset.value(relation, TREE.node) == URIRef(f"{BASE}/feed/{number + 1}")
            next_page = site.log.page(number + 1)
            first = Literal(next_page[0].timestamp, datatype=XSD.dateTime)
            assert dataset.value(relation, TREE.value) == first
            assert all(str(m.timestamp) >= str(next_page[0].timestamp) for m in next_page)
        else:
            assert "immutable" not in cache and "max-age=60" in cache
            assert relations == []
        members = set(dataset.objects(URIRef(BASE + "/feed"), TREE.member))
        assert members == {URIRef(f"{BASE}/feed/member/{m.seq}") for m in site.log.page(number)}


async def test_members_are_versions_and_removals_are_tombstones(three_harvests):
    site, http = three_harvests
    piano = URIRef(event_iri(site, "gan-02"))
    for member in site.log.members_after(None):
        response = await http.get(f"/feed/member/{member.seq}", headers=TRIG)
        assert response.status_code == 200 and "immutable" in response.headers["cache-control"]
        iri = URIRef(f"{BASE}/feed/member/{member.seq}")
        graph = parse(response).graph(iri)
        assert graph.value(iri, DCTERMS.isVersionOf) == URIRef(member.event)
        assert graph.value(iri, DCTERMS.created) == Literal(member.timestamp, datatype=XSD.dateTime)
        if member.kind == "removed":
            assert (iri, RDF.type, AS.Delete) in graph
            assert len(graph) == 3
            assert URIRef(member.event) == piano
        else:
            assert (iri, RDF.type, SCHEMA.Event) in graph or any(graph.objects(iri, SCHEMA.startDate))
            assert graph.value(iri, SCHEMA.name) is not None
            assert (iri, AFFICHE.harvestedAt, None) not in graph


@pytest.mark.parametrize("path", ["/feed/99", "/feed/-1", "/feed/abc", "/feed/1.5", "/feed/%20",
                                  "/feed/0x1", "/feed/member/999", "/feed/member/x", "/feed/member/-1"])
async def test_unknown_cursors_are_404(three_harvests, path):
    _, http = three_harvests
    response = await http.get(path, headers={"Accept": "application/trig, application/json;q=0.1"})
    assert response.status_code == 404
    assert response.json()["status"] == 404


async def test_the_page_after_the_newest_is_404_until_it_exists(three_harvests):
    site, http = three_harvests
    after = site.log.last_page() + 1
    assert (await http.get(f"/feed/{after}", headers=TRIG)).status_code == 404
    site.publish("conteurs", OTHER)
    site.publish("conteurs", OTHER_2)  # three more members: a new page at least
    assert site.log.last_page() >= after
    assert (await http.get(f"/feed/{after}", headers=TRIG)).status_code == 200


async def test_an_empty_feed_has_its_first_page_only(site):
    async with client_for(site) as http:
        response = await http.get("/feed/0", headers=TRIG)
        assert response.status_code == 200
        assert not list(parse(response).objects(URIRef(BASE + "/feed"), TREE.member))
        assert "immutable" not in response.headers["cache-control"]
        assert (await http.get("/feed/1", headers=TRIG)).status_code == 404


async def test_feed_formats_and_406(three_harvests):
    _, http = three_harvests
    nquads = await http.get("/feed/0", headers={"Accept": "application/n-quads"})
    assert nquads.headers["content-type"].startswith("application/n-quads")
    dataset = Dataset()
    dataset.parse(data=nquads.content, format="nquads")
    assert len(list(dataset.objects(URIRef(BASE + "/feed"), TREE.member))) == 2
    jsonld = await http.get("/feed/0", headers={"Accept": "application/ld+json"})
    assert len(Dataset().parse(data=jsonld.content, format="json-ld")) > 0
    refused = await http.get("/feed/0", headers={"Accept": "text/csv"})
    assert refused.status_code == 406


# --- replaying the feed onto a dump -----------------------------------------------------------


def feed_view(dataset: Dataset, base_url: str) -> Graph:
    """What the feed carries: the union of the graphs, without harvest times and without the
    sources' own descriptions (which live in the dumps only)."""
    sources = {URIRef(f"{base_url}/source/{g.identifier.rsplit('/', 1)[-1]}")
               for g in dataset.graphs() if isinstance(g.identifier, URIRef)}
    union = Graph()
    for s, p, o, _ in dataset.quads((None, None, None, None)):
        if s not in sources:
            union.add((s, p, o))
    return without_harvest_time(union)


def split_by_event(graph: Graph) -> dict[URIRef, Graph]:
    from harvester.pipeline import describe

    events = set(graph.subjects(RDF.type, SCHEMA.Event)) | set(graph.subjects(SCHEMA.startDate, None))
    return {e: describe(graph, [e], stop=frozenset(events)) for e in events}


def follow(get, start: str, after: str | None) -> list[tuple[str, URIRef, Graph]]:
    """A minimal LDES follower: walk the pages from the view, keep members created after `after`."""
    root = Dataset().parse(data=get(start), format="trig")
    page = root.value(URIRef(start), TREE.view)
    found = []
    while page is not None:
        dataset = Dataset().parse(data=get(str(page)), format="trig")
        for member in dataset.objects(URIRef(start), TREE.member):
            graph = dataset.graph(member)
            created = str(graph.value(member, DCTERMS.created))
            if after is None or created > after:
                found.append((created, member, graph))
        relations = list(dataset.objects(page, TREE.relation))
        page = dataset.value(relations[0], TREE.node) if relations else None
    return sorted(found, key=lambda m: (m[0], int(str(m[1]).rsplit("/", 1)[-1])))


def replay(descriptions: dict[URIRef, Graph], members) -> Graph:
    state = dict(descriptions)
    for _, member, graph in members:
        event = graph.value(member, DCTERMS.isVersionOf)
        if (member, RDF.type, AS.Delete) in graph:
            state.pop(event, None)
            continue
        version = Graph()
        for s, p, o in graph:
            if s == member and p in (DCTERMS.isVersionOf, DCTERMS.created):
                continue
            version.add((event if s == member else s, p, o))
        state[event] = version
    union = Graph()
    for graph in state.values():
        union += graph
    return union


def current_view(site: Site) -> Graph:
    buffer = io.BytesIO()
    site.store.dump_nquads(buffer)
    dataset = Dataset()
    dataset.parse(data=buffer.getvalue(), format="nquads")
    return feed_view(dataset, site.settings.base_url)


async def test_replaying_the_feed_from_a_dump_ends_with_the_current_graph(site):
    site.publish("grange", VERSION_1)
    site.publish("conteurs", OTHER)
    site.dump()
    async with client_for(site) as http:
        listing = await http.get("/dumps/", headers={"Accept": "application/json"})
        dumped_at = listing.headers["x-affiche-feed-timestamp"]
        body = (await http.get("/dumps/affiche.nq.gz")).content
        assert (await http.get("/dumps/affiche.nq.gz")).headers["x-affiche-feed-timestamp"] == dumped_at

        site.publish("grange", VERSION_2)
        site.publish("conteurs", OTHER_2)
        site.publish("grange", VERSION_3)

        dumped = Dataset()
        dumped.parse(data=gzip.decompress(body), format="nquads")
        start = split_by_event(feed_view(dumped, BASE))
        assert len(start) == 4
        assert feed_view(dumped, BASE) != current_view(site)  # the feed has something to do

        pages: dict[str, bytes] = {}

        async def fetch(url):
            pages[url] = (await http.get(url.removeprefix(BASE), headers=TRIG)).content

        # gather the pages first (the follower itself is synchronous)
        await fetch(BASE + "/feed")
        for number in range(site.log.last_page() + 1):
            await fetch(f"{BASE}/feed/{number}")
    members = follow(pages.__getitem__, BASE + "/feed", dumped_at)
    # grange: 3 changes, then gan-02 back and gan-03 repriced; conteurs: one removed, one created
    assert len(members) == 3 + 2 + 2
    replayed = replay(start, members)
    current = current_view(site)
    assert set(replayed) == set(current), (set(replayed) ^ set(current))


async def test_replaying_from_the_wrong_time_does_not_end_with_the_current_graph(site):
    """The same follower, started too late, misses a change: the test above can fail."""
    site.publish("grange", VERSION_1)
    site.dump()
    dumped = Dataset()
    dumped.parse(data=gzip.decompress((site.settings.dumps_dir / "affiche.nq.gz").read_bytes()),
                 format="nquads")
    site.publish("grange", VERSION_2)
    late = site.log.position().timestamp
    site.publish("grange", VERSION_3)
    async with client_for(site) as http:
        pages = {}
        for url in [BASE + "/feed"] + [f"{BASE}/feed/{n}" for n in range(site.log.last_page() + 1)]:
            pages[url] = (await http.get(url.removeprefix(BASE), headers=TRIG)).content
    members = follow(pages.__getitem__, BASE + "/feed", late)
    replayed = replay(split_by_event(feed_view(dumped, BASE)), members)
    assert set(replayed) != set(current_view(site))


# --- a real LDES client, over a real server ---------------------------------------------------


@pytest.fixture
def served_site(tmp_path):
    port = free_port()
    site = Site(tmp_path, base_url=f"http://127.0.0.1:{port}")
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(site.settings, store=site.store),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield site
    server.should_exit = True
    thread.join(timeout=10)
    site.close()


def strict_nquads(text: str) -> str:
    """The client prints N-Quads with Turtle's bare booleans and numbers; spell them out."""
    bare = re.compile(r" (true|false|[+-]?\d+(?:\.\d+)?) (<[^>]*>) \.$")
    types = {"true": "boolean", "false": "boolean"}

    def spell(match: re.Match) -> str:
        value = match.group(1)
        kind = types.get(value, "decimal" if "." in value else "integer")
        return f' "{value}"^^<http://www.w3.org/2001/XMLSchema#{kind}> {match.group(2)} .'

    return "\n".join(bare.sub(spell, line) for line in text.splitlines())


NEEDS_CLIENT = pytest.mark.skipif(
    shutil.which("ldes-client") is None,
    reason="the npm ldes-client is not installed (npm install -g ldes-client@0.3.0)")


def ldes_client(site: Site, *options: str) -> Dataset:
    result = subprocess.run(["ldes-client", f"{site.settings.base_url}/feed", "--ordered", "ascending",
                             *options], capture_output=True, text=True, timeout=120, cwd=site.root)
    assert result.returncode == 0, result.stderr
    output = Dataset()
    output.parse(data=strict_nquads(result.stdout), format="nquads")
    return output


@NEEDS_CLIENT
def test_the_npm_ldes_client_reads_every_member(served_site):
    site = served_site
    site.publish("grange", VERSION_1)
    site.publish("grange", VERSION_2)
    site.publish("grange", VERSION_3)
    output = ldes_client(site)
    expected = {URIRef(f"{site.settings.base_url}/feed/member/{m.seq}"): m
                for m in site.log.members_after(None)}
    # every member arrives whole, in its own named graph
    assert {g for _, _, _, g in output.quads((None, None, None, None))} == set(expected)
    for iri, member in expected.items():
        graph = output.graph(iri)
        assert graph.value(iri, DCTERMS.isVersionOf) == URIRef(member.event)
        assert graph.value(iri, DCTERMS.created) == Literal(member.timestamp, datatype=XSD.dateTime)
        if member.kind == "removed":
            assert (iri, RDF.type, AS.Delete) in graph and len(graph) == 3
        else:
            assert graph.value(iri, SCHEMA.name) is not None
            assert any(graph.triples((None, SCHEMA.price, None)))  # the offer came with it


@NEEDS_CLIENT
def test_the_npm_ldes_client_from_a_dump_ends_with_the_current_graph(served_site):
    site = served_site
    base = site.settings.base_url
    site.publish("grange", VERSION_1)
    site.publish("conteurs", OTHER)
    site.dump()
    with httpx.Client(base_url=base) as http:
        download = http.get("/dumps/affiche.nq.gz")
    after = download.headers["x-affiche-feed-timestamp"]
    site.publish("grange", VERSION_2)
    site.publish("conteurs", OTHER_2)
    site.publish("grange", VERSION_3)

    output = ldes_client(site, "--after", after)
    members = sorted(
        ((str(output.graph(g).value(g, DCTERMS.created)), g, output.graph(g))
         for g in {g for _, _, _, g in output.quads((None, None, None, None))}),
        key=lambda m: (m[0], int(str(m[1]).rsplit("/", 1)[-1])))
    assert len(members) == len(site.log.members_after(after)) == 7
    dumped = Dataset().parse(data=gzip.decompress(download.content), format="nquads")
    replayed = replay(split_by_event(feed_view(dumped, base)), members)
    assert set(replayed) == set(current_view(site))
