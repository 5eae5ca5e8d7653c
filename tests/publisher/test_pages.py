"""The public site over the harvested demo feeds: pages, embedded JSON-LD, content negotiation,
errors, source reports, dumps, sitemap and SPARQL, asserted on parsed answers."""

from __future__ import annotations

import gzip
import hashlib
import json
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from urllib.parse import urlsplit

import extruct
import httpx
import lxml.html
import pytest
from rdflib import Dataset, Graph, Literal, Namespace, URIRef
from rdflib.compare import graph_diff, isomorphic
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID
from rdflib.namespace import RDF

from harvester.identity import graph_iri
from ontology import SCHEMA
from publisher.app import create_app
from publisher.jsonld_tree import embedded_jsonld
from publisher.settings import Settings
from sparql.store import EmbeddedStore

pytestmark = pytest.mark.anyio

BASE = "http://affiche.test"
QUARANTINED_NAMES = {
    "Lecture publique : nouvelles écritures",
    "Atelier cerfs-volants pour les enfants",
    "Soirée slam",
}
PHARE = "Le Phare des songes"
PHARE_QUERY = ('PREFIX schema: <http://schema.org/> SELECT ?e WHERE { ?e schema:name ?n '
               'FILTER(STR(?n) = "Le Phare des songes") }')
RDF_MEDIA_TYPES = ["text/turtle", "application/ld+json", "application/n-triples",
                   "application/rdf+xml"]
RDFLIB_FORMATS = {"text/turtle": "turtle", "application/ld+json": "json-ld",
                  "application/n-triples": "nt", "application/rdf+xml": "xml"}
SPARQL_JSON = "application/sparql-results+json"
# A plain Namespace: rdflib's DefinedNamespace PROV warns when pytest inspects module attributes.
PROV = Namespace("http://www.w3.org/ns/prov#")


# --- helpers -----------------------------------------------------------------------------------


def html_tree(response: httpx.Response) -> lxml.html.HtmlElement:
    assert response.headers["content-type"].startswith("text/html"), response.headers
    return lxml.html.fromstring(response.text)


def listed_events(tree: lxml.html.HtmlElement) -> dict[str, str]:
    """The event listing (`_listing.html`): link path (query string dropped) -> shown name."""
    links = tree.xpath('//ol[contains(concat(" ", @class, " "), " events ")]/li/a')
    return {urlsplit(a.get("href")).path: a.text_content().strip() for a in links}


def path_of(iri: str) -> str:
    assert iri.startswith(BASE + "/"), iri
    return iri[len(BASE):]


def published(demo_data) -> dict[str, str]:
    """Published event IRI -> name, from the harvest reports."""
    reports = demo_data[2]
    return {e.iri: e.name for r in reports.values() for e in r.events if e.status == "published"}


def quarantined(demo_data) -> dict[str, str]:
    reports = demo_data[2]
    return {e.iri: e.name for r in reports.values() for e in r.events if e.status == "quarantined"}


def parse_rdf(response: httpx.Response, media_type: str) -> Graph:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0].strip() == media_type
    return Graph().parse(data=response.content, format=RDFLIB_FORMATS[media_type])


@pytest.fixture(scope="module")
def phare_iri(demo_store) -> URIRef:
    rows = demo_store.select(PHARE_QUERY)
    assert len(rows) == 1, rows
    return rows[0]["e"]


@pytest.fixture(scope="module")
def phare_path(phare_iri) -> str:
    return path_of(str(phare_iri))


def test_demo_reports_have_the_expected_quarantine(demo_data):
    """The premise of the tests below: the demo quarantines exactly these three events."""
    assert set(quarantined(demo_data).values()) == QUARANTINED_NAMES
    assert len(published(demo_data)) >= 10
    assert not QUARANTINED_NAMES & set(published(demo_data).values())


# --- home page --------------------------------------------------------------------------------


async def test_home_lists_upcoming_published_events_only(client, demo_data, demo_store):
    today = datetime.now(timezone.utc).date().isoformat()
    starts = {str(r["e"]): str(r["s"]) for r in demo_store.select(
        "PREFIX schema: <http://schema.org/> SELECT ?e ?s WHERE { ?e schema:startDate ?s }")}
    expected = {path_of(iri): name for iri, name in published(demo_data).items()
                if starts[iri] >= today}
    assert expected, "the demo events are in the future"

    response = await client.get("/")

    assert response.status_code == 200
    shown = listed_events(html_tree(response))
    assert shown == expected
    assert not QUARANTINED_NAMES & set(shown.values())
    assert not {path_of(iri) for iri in quarantined(demo_data)} & set(shown)


async def test_home_is_french_by_default(client):
    tree = html_tree(await client.get("/"))
    assert tree.get("lang") == "fr"
    assert tree.xpath("string(//h1)").strip() == "Prochains événements"


@pytest.mark.parametrize("request_args", [
    {"params": {"lang": "en"}},
    {"headers": {"Accept-Language": "en"}},
    {"headers": {"Accept-Language": "de-DE, en-GB;q=0.8, fr;q=0.5"}},
], ids=["query", "accept-language", "accept-language-q"])
async def test_home_in_english(client, request_args):
    response = await client.get("/", **request_args)
    tree = html_tree(response)
    assert tree.get("lang") == "en"
    assert tree.xpath("string(//h1)").strip() == "Upcoming events"
    nav = [a.text_content().strip() for a in tree.xpath("//header//nav/a")]
    assert "Events" in nav and "Downloads" in nav
    assert "Accept-Language" in response.headers["vary"]


# --- event page and its embedded JSON-LD ---------------------------------------------------------


async def test_event_page_embeds_google_event_jsonld(client, phare_iri, phare_path):
    response = await client.get(phare_path)
    assert response.status_code == 200
    tree = html_tree(response)
    assert tree.xpath("string(//h1)").strip() == PHARE

    found = extruct.extract(response.text, base_url=BASE + phare_path, syntaxes=["json-ld"])
    items = found["json-ld"]
    assert len(items) == 1
    event = items[0]
    assert event["@context"] in ("https://schema.org", "http://schema.org")
    assert event["@type"] == "TheaterEvent"
    assert event["@id"] == str(phare_iri)
    assert event["name"] == PHARE
    assert datetime.fromisoformat(event["startDate"]) == datetime.fromisoformat(
        "2027-03-12T20:30:00+01:00")
    assert event["eventStatus"] == "https://schema.org/EventScheduled"
    assert event["image"] == "https://theatre-lumiere.example/images/phare.jpg"

    location = event["location"]
    assert location["name"] == "Théâtre de la Lumière"
    assert location["address"]["streetAddress"] == "12 rue des Lanternes"
    assert location["address"]["addressLocality"] == "Lyon"

    offer = event["offers"]
    assert float(offer["price"]) == 18.0
    assert offer["priceCurrency"] == "EUR"
    assert event["organizer"]["name"] == "Théâtre de la Lumière"
    assert event["performer"]["name"] == "Compagnie Brise-Lames"


async def test_event_page_jsonld_script_cannot_be_closed(client, phare_path):
    tree = html_tree(await client.get(phare_path))
    scripts = tree.xpath('//script[@type="application/ld+json"]')
    assert len(scripts) == 1
    text = scripts[0].text
    assert "<" not in text
    assert json.loads(text)["name"] == PHARE


HOSTILE = 'Soirée </script><script>alert("x")</script> & <!-- fin'


def test_embedded_jsonld_escapes_markup():
    graph = Graph()
    event = URIRef(BASE + "/event/x")
    graph.add((event, RDF.type, SCHEMA.Event))
    graph.add((event, SCHEMA.name, Literal(HOSTILE, lang="fr")))

    text = embedded_jsonld(graph, event, "fr")

    assert not {"<", ">", "&"} & set(text)
    assert json.loads(text)["name"] == HOSTILE


async def test_hostile_event_name_stays_inside_its_script(tmp_path):
    """End to end: a name made to close the script element is still one JSON-LD string."""
    store = EmbeddedStore(None)
    event = URIRef(BASE + "/event/hostile-1")
    graph = Graph()
    graph.add((event, RDF.type, SCHEMA.Event))
    graph.add((event, SCHEMA.name, Literal(HOSTILE, lang="fr")))
    graph.add((event, SCHEMA.startDate, Literal("2027-01-01T20:00:00+01:00",
                                                datatype=URIRef("http://www.w3.org/2001/XMLSchema#dateTime"))))
    store.replace_graph(BASE + "/graph/hostile", graph)
    app = create_app(Settings(base_url=BASE, data_dir=tmp_path), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        response = await http.get("/event/hostile-1")

    tree = html_tree(response)
    assert tree.xpath("string(//h1)") == HOSTILE
    assert [s.get("type") for s in tree.xpath("//script")] == ["application/ld+json"]
    items = extruct.extract(response.text, syntaxes=["json-ld"])["json-ld"]
    assert [item["name"] for item in items] == [HOSTILE]


# --- content negotiation -------------------------------------------------------------------------


def _variants():
    for media_type in RDF_MEDIA_TYPES:
        yield pytest.param("", {}, {"Accept": media_type}, media_type,
                           id=f"accept-{RDFLIB_FORMATS[media_type]}")
    for suffix, media_type in ((".ttl", "text/turtle"), (".jsonld", "application/ld+json"),
                               (".nt", "application/n-triples"), (".rdf", "application/rdf+xml")):
        yield pytest.param(suffix, {}, {}, media_type, id=f"suffix{suffix}")
    yield pytest.param("", {"format": "turtle"}, {"Accept": "text/html"}, "text/turtle",
                       id="format=turtle")
    yield pytest.param("", {"format": "nt"}, {}, "application/n-triples", id="format=nt")
    yield pytest.param("", {}, {"Accept": "text/turtle;q=0.9, text/html;q=0.5"}, "text/turtle",
                       id="accept-q")


@pytest.fixture
async def reference_graph(client, phare_path) -> Graph:
    """The event as N-Triples: no syntax shortcuts, the plainest rendering of its graph."""
    response = await client.get(phare_path, headers={"Accept": "application/n-triples"})
    return parse_rdf(response, "application/n-triples")


@pytest.mark.parametrize("suffix,params,headers,media_type", list(_variants()))
async def test_every_rdf_format_carries_the_same_graph(client, phare_iri, phare_path,
                                                       reference_graph, suffix, params, headers,
                                                       media_type):
    response = await client.get(phare_path + suffix, params=params, headers=headers)

    graph = parse_rdf(response, media_type)
    assert "Accept" in [v.strip() for v in response.headers["vary"].split(",")]
    assert Literal(PHARE, lang="fr") in set(graph.objects(phare_iri, SCHEMA.name))
    assert isomorphic(graph, reference_graph), differences(graph, reference_graph)


def differences(graph: Graph, reference: Graph) -> str:
    _, only_here, only_there = graph_diff(graph, reference)
    return f"only in this answer: {sorted(only_here)}; only in N-Triples: {sorted(only_there)}"


async def test_turtle_differs_from_ntriples_only_in_decimal_spelling(client, phare_path,
                                                                    reference_graph):
    """Pins the Turtle bug above to decimals: every other triple of the answer is the same."""
    response = await client.get(phare_path, headers={"Accept": "text/turtle"})
    graph = parse_rdf(response, "text/turtle")
    _, only_turtle, only_ntriples = graph_diff(graph, reference_graph)
    assert len(graph) == len(reference_graph)

    def by_value(triples):
        return {(s, p, o.toPython()) for s, p, o in triples}

    assert by_value(only_turtle) == by_value(only_ntriples)
    decimal = URIRef("http://www.w3.org/2001/XMLSchema#decimal")
    assert all(isinstance(o, Literal) and o.datatype == decimal for _, _, o in only_turtle)


@pytest.mark.parametrize("headers,media_type", [
    ({"Accept": "text/turtle;q=0.9, text/html;q=0.5"}, "text/turtle"),
    ({"Accept": "text/html;q=0.5, application/ld+json"}, "application/ld+json"),
    ({"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, "text/html"),
])
async def test_quality_values_choose_the_format(client, phare_iri, phare_path, headers,
                                                media_type):
    response = await client.get(phare_path, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    if media_type != "text/html":
        graph = parse_rdf(response, media_type)
        assert (phare_iri, SCHEMA.name, None) in graph


async def test_event_graph_describes_its_place_and_offer(client, phare_iri, reference_graph):
    """The entity's graph reaches two hops: place -> address, offer -> price."""
    place = reference_graph.value(phare_iri, SCHEMA.location)
    address = reference_graph.value(place, SCHEMA.address)
    assert str(reference_graph.value(address, SCHEMA.addressLocality)) == "Lyon"
    offer = reference_graph.value(phare_iri, SCHEMA.offers)
    assert float(reference_graph.value(offer, SCHEMA.price).toPython()) == 18.0


async def test_unacceptable_type_is_406_listing_the_offer(client, phare_path):
    response = await client.get(phare_path, headers={"Accept": "image/png"})

    assert response.status_code == 406
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 406
    offered = {t.strip() for t in problem["detail"].split(":", 1)[1].split(",")}
    assert offered == {"text/html", *RDF_MEDIA_TYPES}


async def test_unknown_format_parameter_is_406(client, phare_path):
    response = await client.get(phare_path, params={"format": "png"})
    assert response.status_code == 406
    assert response.json()["status"] == 406


# --- place and organisation pages ----------------------------------------------------------------


def _events_linked_to(demo_store, entity: URIRef, link: str) -> set[str]:
    rows = demo_store.select(
        f"PREFIX schema: <http://schema.org/> SELECT ?x ?e WHERE {{ ?e schema:{link} ?x }}",
        {"x": entity})
    return {path_of(str(r["e"])) for r in rows}


@pytest.mark.parametrize("link", ["location", "organizer", "performer"])
async def test_linked_entity_page_lists_its_events(client, demo_store, phare_iri, phare_path,
                                                   reference_graph, link):
    entity = reference_graph.value(phare_iri, SCHEMA[link])
    assert isinstance(entity, URIRef), f"the event's {link} has its own IRI"
    expected = _events_linked_to(demo_store, entity, link)
    assert phare_path in expected

    response = await client.get(path_of(str(entity)))

    assert response.status_code == 200
    tree = html_tree(response)
    name = str(reference_graph.value(entity, SCHEMA.name))
    assert tree.xpath("string(//h1)").strip() == name
    assert set(listed_events(tree)) == expected
    assert listed_events(tree)[phare_path] == PHARE


async def test_place_page_lists_every_event_of_the_venue(client, demo_store, phare_iri,
                                                         reference_graph):
    """The theatre's three published shows, from two syntaxes of one page, meet on one place."""
    place = reference_graph.value(phare_iri, SCHEMA.location)
    tree = html_tree(await client.get(path_of(str(place))))
    assert set(listed_events(tree).values()) == {
        PHARE, "Vertiges", "Jazz au foyer : Trio Nocturne"}


async def test_place_as_turtle(client, phare_iri, reference_graph):
    place = reference_graph.value(phare_iri, SCHEMA.location)
    response = await client.get(path_of(str(place)), headers={"Accept": "text/turtle"})
    graph = parse_rdf(response, "text/turtle")
    assert str(graph.value(place, SCHEMA.name)) == "Théâtre de la Lumière"


# --- 404 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/event/no-such-event",
    "/event/no-such-event.ttl",
    "/place/no-such-place",
    "/organization/no-such-organisation",
])
async def test_unknown_key_is_problem_json_for_api_clients(client, path):
    response = await client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 404
    assert problem["title"] == "Not found"


async def test_unknown_key_with_default_accept_is_problem_json(client):
    response = await client.get("/event/no-such-event")
    assert response.status_code == 404
    assert response.json()["status"] == 404


async def test_unknown_key_is_a_page_for_browsers(client):
    response = await client.get("/event/no-such-event",
                                headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 404
    tree = html_tree(response)
    assert tree.get("lang") in ("fr", "en")
    assert tree.xpath("string(//h1)").strip().startswith("404")


async def test_key_of_another_kind_is_404(client, phare_path):
    response = await client.get(phare_path.replace("/event/", "/place/"))
    assert response.status_code == 404


@pytest.mark.parametrize("path", [
    "/event/..%2F..%2Fetc",
    "/event/..%2F..%2Fpyproject.toml",
    "/event/%2E%2E",
    "/event/.hidden",
    "/event/a%00b",
    "/event/" + "a" * 300,
])
async def test_traversal_and_odd_keys_are_404(client, path):
    response = await client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json()["status"] == 404


# --- source reports -----------------------------------------------------------------------------


async def test_source_page_shows_the_quarantined_event_and_why(client):
    response = await client.get("/source/theatre-lumiere")
    assert response.status_code == 200
    tree = html_tree(response)
    rows = []
    for tr in tree.xpath('//table[contains(@class, "report")]/tbody/tr'):
        cells = tr.xpath("./td")
        rows.append({"event": cells[0].xpath("string(text()[1])").strip(),
                     "status": cells[1].text_content().strip(),
                     "field": cells[2].text_content().strip(),
                     "severity": cells[3].text_content().strip()})
    lecture = [r for r in rows if r["event"] == "Lecture publique : nouvelles écritures"]
    assert lecture, rows
    assert {"status": "en quarantaine", "field": "startDate", "severity": "Bloquant"} in [
        {k: r[k] for k in ("status", "field", "severity")} for r in lecture]
    summary = tree.xpath('string(//p[@class="summary"])')
    assert "1 en quarantaine" in " ".join(summary.split())


async def test_source_report_as_json(client, demo_data):
    response = await client.get("/source/theatre-lumiere", headers={"Accept": "application/json"})
    assert response.status_code == 200
    report = response.json()
    assert report["summary"]["quarantined"] == 1
    assert report["summary"]["published"] == 3
    assert "quarantined_data" not in report
    by_name = {e["name"]: e for e in report["events"]}
    lecture = by_name["Lecture publique : nouvelles écritures"]
    assert lecture["status"] == "quarantined"
    assert ("startDate", "violation") in {(p["field"], p["severity"]) for p in lecture["problems"]}
    assert by_name[PHARE]["status"] == "published"
    assert {e["iri"] for e in report["events"] if e["status"] == "published"} <= set(
        published(demo_data))


@pytest.mark.parametrize("path", ["/source/no-such-source", "/source/..%2F..%2Fetc",
                                  "/source/theatre-lumiere.json"])
async def test_unknown_source_is_404(client, path):
    response = await client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json()["status"] == 404


# --- dumps --------------------------------------------------------------------------------------


@pytest.fixture
async def dump_listing(client) -> dict[str, dict]:
    response = await client.get("/dumps/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    return {f["name"]: f for f in response.json()}


async def test_dump_listing_json(dump_listing):
    dump = dump_listing["affiche.nq.gz"]
    assert dump["size"] > 0
    assert len(dump["sha256"]) == 64 and int(dump["sha256"], 16) >= 0
    assert dump["media_type"] == "application/n-quads"


async def test_dump_listing_html_links_the_files(client):
    tree = html_tree(await client.get("/dumps/", headers={"Accept": "text/html"}))
    assert "/dumps/affiche.nq.gz" in tree.xpath("//table//a/@href")


async def test_dump_holds_one_graph_per_source_and_no_quarantined_event(client, demo_data,
                                                                        demo_sources,
                                                                        dump_listing):
    response = await client.get("/dumps/affiche.nq.gz")
    assert response.status_code == 200
    body = response.content
    assert len(body) == dump_listing["affiche.nq.gz"]["size"]
    assert hashlib.sha256(body).hexdigest() == dump_listing["affiche.nq.gz"]["sha256"]

    dataset = Dataset()
    dataset.parse(data=gzip.decompress(body), format="nquads")
    graphs = {g.identifier: g for g in dataset.graphs()
              if g.identifier != DATASET_DEFAULT_GRAPH_ID and len(g)}
    assert set(graphs) == {URIRef(graph_iri(BASE, s.id)) for s in demo_sources}

    names = {str(o) for g in graphs.values() for o in g.objects(None, SCHEMA.name)}
    assert not names & QUARANTINED_NAMES
    subjects = {str(s) for g in graphs.values() for s in g.subjects()}
    assert not subjects & set(quarantined(demo_data))
    for source in demo_sources:
        graph = graphs[URIRef(graph_iri(BASE, source.id))]
        events = {str(e) for e in graph.subjects(PROV.wasDerivedFrom, None)}
        expected = {e.iri for e in demo_data[2][source.id].events if e.status == "published"}
        assert events == expected


async def test_sha256sums_matches_the_files(client, dump_listing):
    response = await client.get("/dumps/SHA256SUMS")
    assert response.status_code == 200
    sums = {}
    for line in response.text.splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*")] = digest
    assert set(sums) == set(dump_listing)
    for name, digest in sums.items():
        body = (await client.get(f"/dumps/{name}")).content
        assert hashlib.sha256(body).hexdigest() == digest


@pytest.mark.parametrize("path", ["/dumps/..%2Fpyproject.toml", "/dumps/..%2F..%2Fpyproject.toml",
                                  "/dumps/%2E%2E", "/dumps/.affiche.nq.gz.1.tmp", "/dumps/store",
                                  "/dumps/nothing.nq.gz"])
async def test_dump_names_outside_the_listing_are_404(client, path):
    response = await client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json()["status"] == 404


# --- sitemap and robots -------------------------------------------------------------------------


SITEMAP_NS = {"sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}


async def test_sitemap_lists_every_published_event(client, demo_data):
    response = await client.get("/sitemap.xml")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in ("application/xml", "text/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.sitemaps.org/schemas/sitemap/0.9}urlset"
    locs = [loc.text for loc in root.findall("sm:url/sm:loc", SITEMAP_NS)]
    assert len(locs) == len(set(locs))
    assert all(loc.startswith(BASE + "/") for loc in locs)
    assert set(published(demo_data)) <= set(locs)
    assert not set(quarantined(demo_data)) & set(locs)
    assert not [loc for loc in locs if "#" in loc]


async def test_sitemap_urls_answer(client):
    root = ET.fromstring((await client.get("/sitemap.xml")).content)
    for loc in root.findall("sm:url/sm:loc", SITEMAP_NS):
        response = await client.get(path_of(loc.text) or "/", headers={"Accept": "text/html"})
        assert response.status_code == 200, loc.text


async def test_robots_points_to_the_sitemap(client):
    response = await client.get("/robots.txt")
    assert response.status_code == 200
    fields = [line.split(":", 1) for line in response.text.splitlines() if ":" in line]
    sitemaps = [value.strip() for key, value in fields if key.strip().lower() == "sitemap"]
    assert sitemaps == [BASE + "/sitemap.xml"]
    assert (await client.get(path_of(sitemaps[0]))).status_code == 200


# --- SPARQL -------------------------------------------------------------------------------------


async def sparql_select(client, query: str) -> list[dict]:
    response = await client.get("/sparql", params={"query": query},
                                headers={"Accept": SPARQL_JSON})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(SPARQL_JSON)
    return response.json()["results"]["bindings"]


async def test_sparql_all_schema_events_are_the_published_events(client, demo_data):
    rows = await sparql_select(
        client, "PREFIX schema: <http://schema.org/> SELECT DISTINCT ?e WHERE { ?e a schema:Event }")
    assert {r["e"]["value"] for r in rows} == set(published(demo_data))


async def test_sparql_sees_the_union_of_the_published_graphs(client, demo_data):
    rows = await sparql_select(client, """
        PREFIX schema: <http://schema.org/>
        SELECT DISTINCT ?e ?name WHERE { ?e schema:startDate ?start ; schema:name ?name }""")
    iris = {r["e"]["value"] for r in rows}
    names = {r["name"]["value"] for r in rows}
    assert iris == set(published(demo_data))
    assert not names & QUARANTINED_NAMES
    assert {urlsplit(iri).path.split("/")[2].rsplit("-", 1)[0] for iri in iris} == {
        "theatre-lumiere", "festival-marees", "salle-erable"}


async def test_sparql_named_graphs_are_the_sources(client, demo_sources):
    rows = await sparql_select(client, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert {r["g"]["value"] for r in rows} == {graph_iri(BASE, s.id) for s in demo_sources}


async def test_sparql_has_no_quarantined_name_anywhere(client):
    rows = await sparql_select(client, """
        PREFIX schema: <http://schema.org/>
        SELECT DISTINCT ?name WHERE { GRAPH ?g { ?s schema:name ?name } }""")
    assert rows
    assert not {r["name"]["value"] for r in rows} & QUARANTINED_NAMES
