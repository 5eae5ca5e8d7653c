"""A venue shared by many sources holds every source's spelling of its name and address: an
agenda line reads each of them once, not every combination (at 1,000,000 events, one venue had 35
names and 757 streets, and the listing's query made 20 million rows for one event, filling
gigabytes while the server warmed its agenda)."""

from __future__ import annotations

from rdflib import Graph, Literal, Namespace, URIRef

from publisher.agenda import summaries
from sparql.queries import load_query
from sparql.store import EmbeddedStore

SCHEMA = Namespace("http://schema.org/")
BASE = "http://affiche.test"
EVENT = URIRef(f"{BASE}/event/bal-du-port")
VENUE = URIRef(f"{BASE}/place/salle-du-port")  # invented: the Salle du Port (La Rochelle)
SOURCES = 12


def source_graph(number: int) -> Graph:
    """One source's view of the shared venue: its own spelling, its own address node."""
    graph = Graph()
    address = URIRef(f"{BASE}/graph/s{number}/address")
    graph.add((VENUE, SCHEMA.name, Literal(f"Salle du Port {number}", lang="fr")))
    graph.add((VENUE, SCHEMA.address, address))
    graph.add((address, SCHEMA.streetAddress, Literal(f"{number} quai Duperré")))
    graph.add((address, SCHEMA.addressLocality, Literal(f"La Rochelle ({number})")))
    if number == 0:
        graph.add((EVENT, SCHEMA.startDate, Literal("2027-07-14T21:00:00")))
        graph.add((EVENT, SCHEMA.name, Literal("Bal du port", lang="fr")))
        graph.add((EVENT, SCHEMA.name, Literal("Harbour ball", lang="en")))
        graph.add((EVENT, SCHEMA.location, VENUE))
    return graph


def test_a_shared_venue_s_spellings_are_read_once_each(tmp_path):
    store = EmbeddedStore(tmp_path / "store")
    for number in range(SOURCES):
        store.replace_graph(f"{BASE}/graph/s{number}", source_graph(number))
    rows = store.select(load_query("event_summary"), {"event": EVENT})
    # start + 2 names + 12 venue names + 12 streets + 12 towns: a sum, not 2 x 12 x 12 x 12 rows
    assert len(rows) == 1 + 2 + 3 * SOURCES
    [line] = summaries(store, [EVENT], "en")
    assert line["name"] == "Harbour ball" and line["place"].startswith("Salle du Port")
    assert line["street"].endswith("quai Duperré") and line["start"] == "2027-07-14T21:00:00"
    [french] = summaries(store, [EVENT], "fr")
    assert french["name"] == "Bal du port"
    store.close()


def test_an_event_without_a_start_or_a_name_has_no_line(tmp_path):
    store = EmbeddedStore(tmp_path / "store")
    graph = source_graph(1)
    graph.add((EVENT, SCHEMA.name, Literal("Sans date", lang="fr")))
    graph.add((EVENT, SCHEMA.location, VENUE))
    store.replace_graph(f"{BASE}/graph/s1", graph)
    assert summaries(store, [EVENT], "fr") == []
    store.close()
