"""The public site over an invented agenda (Liège, Namur, Québec, Lyon): filters, pagination,
calendar export, HTTP caching, HEAD, gzip, sitemap index, VoID/DCAT, vocabulary, 410 Gone.

Every answer is parsed (HTML with lxml, iCalendar with icalendar, RDF with rdflib, XML with
ElementTree) and compared with what the fixture holds.
"""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urlsplit

import extruct
import httpx
import icalendar
import lxml.html
import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import RDF

from harvester.changes import ChangeLog
from ontology import AFFICHE, DISCIPLINE, SCHEMA, vocabulary
from publisher.app import create_app
from publisher.dumps import write_dumps
from publisher.settings import Settings
from shapes import shapes_graph
from sparql.store import EmbeddedStore

pytestmark = pytest.mark.anyio

BASE = "http://agenda.test"
# Plain Namespaces: rdflib's DefinedNamespaces warn when pytest inspects module attributes.
VOID = Namespace("http://rdfs.org/ns/void#")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCTERMS = Namespace("http://purl.org/dc/terms/")
SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")
HARVESTED = "2026-11-02T09:15:00+00:00"
SOURCE_MODIFIED = "2026-11-02T09:15:30+00:00"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def dt(text: str) -> Literal:
    return Literal(text, datatype=XSD.dateTime)


def e(key: str) -> URIRef:
    return URIRef(f"{BASE}/event/{key}")


# What the invented agenda holds: key -> (name fr, start, city, discipline, free)
EVENTS = {
    "nuit-jazz": ("Nuit du jazz liégeois", "2027-04-10T20:00:00+02:00", "Liège", "music", False),
    "cirque-citadelle": ("Cirque sous la citadelle", "2027-05-01", "Namur", "circus", True),
    "marins-quebec": ("Les Marins du Saint-Laurent", "2027-03-20T19:30:00-04:00", "Québec",
                      "theatre", False),
    "danse-berges": ("Danse sur les berges", "2027-06-15T18:00:00+02:00", "Lyon", "dance", True),
    "vieux-concert": ("Concert d'autrefois", "2021-01-09T20:00:00+01:00", "Liège", "music", False),
}
FUTURE = [k for k, v in sorted(EVENTS.items(), key=lambda kv: kv[1][1]) if not v[1].startswith("2021")]


def agenda_graph() -> Graph:
    g = Graph()
    source = URIRef(f"{BASE}/source/agenda-fictif")
    g.add((source, RDF.type, AFFICHE.Source))
    g.add((source, RDF.type, DCAT.Dataset))
    g.add((source, DCTERMS.title, Literal("Agenda fictif (Wallonie, Québec, Lyon)")))
    g.add((source, DCTERMS.modified, dt(SOURCE_MODIFIED)))
    places = {}
    for city, (street, postal, country, lat, lon) in {
        "Liège": ("3 place du Pont d'Avroy", "4000", "BE", "50.6405", "5.5679"),
        "Namur": ("1 route Merveilleuse", "5000", "BE", None, None),
        "Québec": ("90 rue du Cap-Blanc", "G1K 4G9", "CA", None, None),
        "Lyon": ("5 quai des Berges", "69007", "FR", None, None),
    }.items():
        place = URIRef(f"{BASE}/place/salle-{postal.replace(' ', '').lower()}")
        address = URIRef(f"{place}#address")
        g.add((place, RDF.type, SCHEMA.Place))
        g.add((place, SCHEMA.name, Literal(f"Salle des Berges de {city}", lang="fr")))
        g.add((place, SCHEMA.address, address))
        g.add((address, RDF.type, SCHEMA.PostalAddress))
        g.add((address, SCHEMA.streetAddress, Literal(street)))
        g.add((address, SCHEMA.postalCode, Literal(postal)))
        g.add((address, SCHEMA.addressLocality, Literal(city)))
        g.add((address, SCHEMA.addressCountry, Literal(country)))
        if lat:
            geo = URIRef(f"{place}#geo")
            g.add((place, SCHEMA.geo, geo))
            g.add((geo, SCHEMA.latitude, Literal(lat, datatype=XSD.decimal)))
            g.add((geo, SCHEMA.longitude, Literal(lon, datatype=XSD.decimal)))
        places[city] = place
    for key, (name, start, city, discipline, free) in EVENTS.items():
        event = e(key)
        g.add((event, RDF.type, SCHEMA.Event))
        g.add((event, SCHEMA.name, Literal(name, lang="fr")))
        g.add((event, SCHEMA.startDate, Literal(start, datatype=XSD.date if len(start) == 10
                                                else XSD.dateTime)))
        g.add((event, SCHEMA.location, places[city]))
        g.add((event, AFFICHE.discipline, DISCIPLINE[discipline]))
        g.add((event, AFFICHE.harvestedAt, dt(HARVESTED)))
        g.add((event, URIRef("http://www.w3.org/ns/prov#wasDerivedFrom"), source))
        if free:
            offer = URIRef(f"{event}#offer")
            g.add((event, SCHEMA.offers, offer))
            g.add((offer, RDF.type, SCHEMA.Offer))
            g.add((offer, SCHEMA.price, Literal("0", datatype=XSD.decimal)))
            g.add((offer, SCHEMA.priceCurrency, Literal("EUR")))
    _complete_the_jazz_night(g, e("nuit-jazz"))
    quebec = e("marins-quebec")
    g.add((quebec, SCHEMA.eventStatus, SCHEMA.EventCancelled))
    g.add((quebec, SCHEMA.description, Literal("Une pièce sur les marins du fleuve.", lang="fr")))
    offer = URIRef(f"{quebec}#offer")
    g.add((quebec, SCHEMA.offers, offer))
    g.add((offer, SCHEMA.price, Literal("30.00", datatype=XSD.decimal)))
    g.add((offer, SCHEMA.priceCurrency, Literal("CAD")))
    g.add((e("cirque-citadelle"), SCHEMA.endDate, Literal("2027-05-02", datatype=XSD.date)))
    return g


def _complete_the_jazz_night(g: Graph, event: URIRef) -> None:
    """Every property Google's Event documentation lists, as an organiser would write them."""
    g.add((event, RDF.type, SCHEMA.MusicEvent))
    g.add((event, SCHEMA.name, Literal("Liège jazz night", lang="en")))
    g.add((event, SCHEMA.endDate, dt("2027-04-10T23:00:00+02:00")))
    g.add((event, SCHEMA.description, Literal("Trois sets du Quatuor Meuse, improvisations "
                                              "sur les standards.", lang="fr")))
    g.add((event, SCHEMA.description, Literal("Three sets by the Quatuor Meuse.", lang="en")))
    g.add((event, SCHEMA.image, URIRef("https://amis-du-pont.example/img/jazz.jpg")))
    g.add((event, SCHEMA.url, URIRef("https://amis-du-pont.example/agenda/nuit-jazz")))
    g.add((event, SCHEMA.eventStatus, SCHEMA.EventScheduled))
    g.add((event, SCHEMA.eventAttendanceMode, SCHEMA.OfflineEventAttendanceMode))
    g.add((event, SCHEMA.accessibilityFeature, Literal("Accès en fauteuil roulant", lang="fr")))
    g.add((event, SCHEMA.accessibilityFeature, Literal("Wheelchair access", lang="en")))
    offer = URIRef(f"{event}#offer")
    g.add((event, SCHEMA.offers, offer))
    g.add((offer, RDF.type, SCHEMA.Offer))
    g.add((offer, SCHEMA.price, Literal("15.00", datatype=XSD.decimal)))
    g.add((offer, SCHEMA.priceCurrency, Literal("EUR")))
    g.add((offer, SCHEMA.url, URIRef("https://billets.amis-du-pont.example/nuit-jazz")))
    g.add((offer, SCHEMA.availability, SCHEMA.InStock))
    g.add((offer, SCHEMA.validFrom, dt("2026-12-01T10:00:00+01:00")))
    performer = URIRef(f"{BASE}/organization/quatuor-meuse")
    g.add((event, SCHEMA.performer, performer))
    g.add((performer, RDF.type, SCHEMA.MusicGroup))
    g.add((performer, SCHEMA.name, Literal("Quatuor Meuse")))
    organizer = URIRef(f"{BASE}/organization/amis-du-pont")
    g.add((event, SCHEMA.organizer, organizer))
    g.add((organizer, RDF.type, SCHEMA.Organization))
    g.add((organizer, SCHEMA.name, Literal("Les Amis du Pont")))
    g.add((organizer, SCHEMA.url, URIRef("https://amis-du-pont.example/")))


@pytest.fixture(scope="module")
def agenda_store() -> EmbeddedStore:
    store = EmbeddedStore(None)
    store.replace_graph(f"{BASE}/graph/agenda-fictif", agenda_graph())
    return store


def make_client(store, data_dir, **settings) -> httpx.AsyncClient:
    app = create_app(Settings(base_url=BASE, data_dir=data_dir, **settings), store=store)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, agenda_store):
    directory = tmp_path_factory.mktemp("agenda-data")
    write_dumps(agenda_store, directory / "dumps")
    return directory


@pytest.fixture
async def site(agenda_store, data_dir):
    async with make_client(agenda_store, data_dir) as http:
        yield http


def html(response: httpx.Response) -> lxml.html.HtmlElement:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return lxml.html.fromstring(response.text)


def listed(tree) -> list[str]:
    """Event keys in listing order."""
    return [urlsplit(a.get("href")).path.rsplit("/", 1)[-1]
            for a in tree.xpath('//ol[@class="events"]/li/a')]


# --- agenda filters -----------------------------------------------------------------------------


async def test_agenda_lists_upcoming_events_in_start_order(site):
    tree = html(await site.get("/"))
    assert listed(tree) == FUTURE
    assert "vieux-concert" not in listed(tree)


@pytest.mark.parametrize("params,expected", [
    ({"city": "Liège"}, ["nuit-jazz"]),
    ({"city": "liège"}, ["nuit-jazz"]),
    ({"city": "Liège", "from": "2020-01-01"}, ["vieux-concert", "nuit-jazz"]),
    ({"discipline": "circus"}, ["cirque-citadelle"]),
    ({"discipline": "music", "from": "2020-01-01"}, ["vieux-concert", "nuit-jazz"]),
    ({"q": "JAZZ"}, ["nuit-jazz"]),
    ({"q": "marins du fleuve"}, ["marins-quebec"]),
    ({"free": "1"}, ["cirque-citadelle", "danse-berges"]),
    ({"from": "2027-04-01", "to": "2027-05-01"}, ["nuit-jazz", "cirque-citadelle"]),
    ({"to": "2027-03-20"}, ["marins-quebec"]),
    ({"city": "Namur", "discipline": "music"}, []),
    ({"q": "aucun mot de ce genre"}, []),
], ids=lambda v: str(v))
async def test_agenda_filters(site, params, expected):
    tree = html(await site.get("/", params=params))
    assert listed(tree) == expected


async def test_agenda_filter_form_is_labelled_and_keeps_the_choices(site):
    tree = html(await site.get("/", params={"city": "Namur", "discipline": "circus", "free": "1",
                                           "q": "citadelle", "lang": "en"}))
    form = tree.xpath('//form[@role="search"]')[0]
    for field in form.xpath(".//input[not(@type='hidden')] | .//select"):
        assert form.xpath(f'.//label[@for="{field.get("id")}"]'), field.get("name")
    assert form.xpath('string(.//select[@name="city"]/option[@selected]/@value)') == "Namur"
    assert form.xpath('string(.//select[@name="discipline"]/option[@selected])') == "Circus"
    assert form.xpath('.//input[@name="free"]/@checked')
    assert form.xpath('string(.//input[@name="q"]/@value)') == "citadelle"
    cities = form.xpath('.//select[@name="city"]/option/@value')
    assert cities == ["", "Liège", "Lyon", "Namur", "Québec"]


@pytest.mark.parametrize("params,word", [
    ({"from": "10/04/2027"}, "from"),
    ({"to": "demain"}, "to"),
    ({"from": "2027-05-01", "to": "2027-04-01"}, "before"),
    ({"discipline": "jonglerie"}, "discipline"),
    ({"q": "x" * 101}, "q"),
    ({"page": "0"}, "page"),
])
async def test_agenda_refuses_bad_filters_with_400(site, params, word):
    response = await site.get("/", params=params, headers={"Accept": "application/json"})
    assert response.status_code == 400
    problem = response.json()
    assert problem["status"] == 400
    assert word in problem["detail"]


# --- pagination ---------------------------------------------------------------------------------


async def test_pagination_walks_every_event_once(agenda_store, data_dir):
    async with make_client(agenda_store, data_dir, page_size=3) as http:
        first = html(await http.get("/", params={"from": "2020-01-01"}))
        next_href = first.xpath('string(//nav[@class="pages"]/a[@rel="next"]/@href)')
        assert next_href and not first.xpath('//nav[@class="pages"]/a[@rel="prev"]')
        second = html(await http.get(next_href))
        assert not second.xpath('//nav[@class="pages"]/a[@rel="next"]')
        assert second.xpath('//nav[@class="pages"]/a[@rel="prev"]')
        assert "from=2020-01-01" in next_href, "the filters follow the pages"
        shown = listed(first) + listed(second)
    assert len(listed(first)) == 3
    assert shown == ["vieux-concert", *FUTURE]


# --- event page ---------------------------------------------------------------------------------


async def test_event_page_shows_everything_the_data_has(site):
    tree = html(await site.get("/event/nuit-jazz", params={"lang": "fr"}))
    facts = {dt_.text_content().strip(): dd for dt_, dd in zip(tree.xpath("//dl[@class='facts']/dt"),
                                                               tree.xpath("//dl[@class='facts']/dd"))}
    assert "samedi 10 avril 2027, 20 h 00" in facts["Quand"].text_content()
    assert "23 h 00" in facts["Quand"].text_content()
    assert "UTC+02:00" in facts["Quand"].text_content()
    assert "Quatuor Meuse" in facts["Interprètes"].text_content()
    assert facts["Interprètes"].xpath(".//a/@href")[0].startswith("/organization/quatuor-meuse")
    organiser_links = facts["Organisateur"].xpath(".//a/@href")
    assert "https://amis-du-pont.example/" in organiser_links
    assert "15,00 €" in " ".join(facts["Tarifs"].text_content().split())
    assert facts["Tarifs"].xpath('string(.//a[@class="tickets"]/@href)') == \
        "https://billets.amis-du-pont.example/nuit-jazz"
    assert facts["Discipline"].text_content().strip() == "Musique"
    assert facts["Accessibilité"].text_content().strip() == "Accès en fauteuil roulant"
    assert facts["Participation"].text_content().strip() == "Sur place"
    assert "openstreetmap.org" in facts["Où"].xpath("string(.//a[@rel='external']/@href)")
    assert tree.xpath("string(//img[@class='poster']/@src)") == "https://amis-du-pont.example/img/jazz.jpg"
    assert tree.xpath("string(//a[@class='organiser-page']/@href)") == \
        "https://amis-du-pont.example/agenda/nuit-jazz"
    assert "Trois sets" in tree.xpath("string(//div[@class='description'])")


async def test_event_page_in_english_uses_english_words_dates_and_text(site):
    tree = html(await site.get("/event/nuit-jazz", headers={"Accept-Language": "en-CA,en;q=0.9"}))
    assert tree.xpath("string(//h1)") == "Liège jazz night"
    when = tree.xpath("string(//dd[@class='when'])")
    assert "Saturday 10 April 2027, 8:00 pm" in when
    assert "Wheelchair access" in tree.xpath("string(//dd[@class='accessibility'])")


async def test_cancelled_event_says_so_first(site):
    tree = html(await site.get("/event/marins-quebec", params={"lang": "fr"}))
    status = tree.xpath('//article/*[2]')[0]
    assert status.get("role") == "status"
    assert status.text_content().strip() == "Annulé"
    assert "30,00 $ CA" in " ".join(tree.xpath("string(//dd[@class='prices'])").split())


GOOGLE_REQUIRED = ("name", "startDate", "location")
GOOGLE_RECOMMENDED = ("description", "endDate", "image", "offers", "organizer", "performer",
                      "eventStatus", "eventAttendanceMode")


async def test_embedded_jsonld_meets_google_event_requirements(site):
    response = await site.get("/event/nuit-jazz", params={"lang": "en"})
    [item] = extruct.extract(response.text, base_url=BASE, syntaxes=["json-ld"])["json-ld"]
    for name in GOOGLE_REQUIRED + GOOGLE_RECOMMENDED:
        assert item.get(name), name
    assert item["@type"] == "MusicEvent"
    assert item["name"] == "Liège jazz night"
    assert item["location"]["address"]["addressLocality"] == "Liège"
    assert item["location"]["address"]["streetAddress"]
    assert item["offers"]["url"] == "https://billets.amis-du-pont.example/nuit-jazz"
    assert item["offers"]["availability"] == "https://schema.org/InStock"
    assert float(item["offers"]["price"]) == 15.0
    assert item["eventStatus"] == "https://schema.org/EventScheduled"
    assert item["eventAttendanceMode"] == "https://schema.org/OfflineEventAttendanceMode"
    assert item["performer"]["name"] == "Quatuor Meuse"
    assert item["organizer"]["url"] == "https://amis-du-pont.example/"


async def test_event_page_has_opengraph_and_landmarks(site):
    tree = html(await site.get("/event/nuit-jazz", params={"lang": "en"}))
    og = {m.get("property"): m.get("content") for m in tree.xpath("//meta[@property]")}
    assert og["og:title"] == "Liège jazz night"
    assert og["og:url"] == f"{BASE}/event/nuit-jazz"
    assert og["og:image"] == "https://amis-du-pont.example/img/jazz.jpg"
    assert og["og:description"].startswith("Three sets")
    assert og["og:locale"] == "en_GB"
    assert tree.xpath("//header") and tree.xpath("//main[@id='main']") and tree.xpath("//footer")
    assert all(nav.get("aria-label") for nav in tree.xpath("//nav"))
    assert tree.xpath("string(//img/@alt)")
    assert not tree.xpath("//script[not(@type='application/ld+json')]"), "no JavaScript needed"


async def test_place_page_lists_its_events(site):
    tree = html(await site.get("/place/salle-4000"))
    assert set(listed(tree)) == {"nuit-jazz", "vieux-concert"}


# --- calendar -----------------------------------------------------------------------------------


def vevents(response: httpx.Response) -> dict[str, icalendar.Event]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


async def test_calendar_holds_the_agenda_with_iris_as_uids(site):
    events = vevents(await site.get("/calendar.ics"))
    assert list(events) == [str(e(k)) for k in FUTURE]
    jazz = events[str(e("nuit-jazz"))]
    assert jazz.decoded("DTSTART") == datetime.fromisoformat("2027-04-10T20:00:00+02:00")
    assert jazz.decoded("DTEND") == datetime.fromisoformat("2027-04-10T23:00:00+02:00")
    assert "Liège" in str(jazz["LOCATION"])
    assert str(jazz["URL"]) == "https://amis-du-pont.example/agenda/nuit-jazz"
    cirque = events[str(e("cirque-citadelle"))]
    assert cirque.decoded("DTSTART") == date(2027, 5, 1)
    assert cirque.decoded("DTEND") == date(2027, 5, 3), "all-day DTEND is exclusive"
    assert str(events[str(e("marins-quebec"))]["STATUS"]) == "CANCELLED"


async def test_calendar_takes_the_same_filters_as_the_agenda(site):
    for params in ({"free": "1"}, {"city": "Liège", "from": "2020-01-01"}, {"discipline": "theatre"}):
        listed_keys = listed(html(await site.get("/", params=params)))
        events = vevents(await site.get("/calendar.ics", params=params))
        assert list(events) == [str(e(k)) for k in listed_keys], params


async def test_calendar_link_on_the_agenda_keeps_the_filters(site):
    tree = html(await site.get("/", params={"city": "Lyon"}))
    href = tree.xpath('string(//link[@type="text/calendar"]/@href)')
    assert list(vevents(await site.get(href))) == [str(e("danse-berges"))]


async def test_calendar_refuses_bad_filters(site):
    response = await site.get("/calendar.ics", params={"discipline": "nope"})
    assert response.status_code == 400


async def test_calendar_is_capped(agenda_store, data_dir):
    async with make_client(agenda_store, data_dir, calendar_max_events=2) as http:
        assert list(vevents(await http.get("/calendar.ics"))) == [str(e(k)) for k in FUTURE[:2]]


# --- caching, HEAD, gzip -------------------------------------------------------------------------


PAGES = ["/", "/event/nuit-jazz", "/place/salle-4000", "/event/nuit-jazz.ttl", "/calendar.ics",
         "/sitemap.xml", "/robots.txt", "/.well-known/void", "/ns", "/shapes"]


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_has_validators_and_answers_304(site, path):
    response = await site.get(path)
    assert response.status_code == 200
    etag = response.headers["etag"]
    cache = response.headers["cache-control"]
    assert "public" in cache and "s-maxage=" in cache

    again = await site.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag

    other = await site.get(path, headers={"If-None-Match": 'W/"something-else"'})
    assert other.status_code == 200
    assert other.content == response.content


async def test_etag_differs_between_representations(site):
    french = await site.get("/event/nuit-jazz", params={"lang": "fr"})
    english = await site.get("/event/nuit-jazz", params={"lang": "en"})
    turtle = await site.get("/event/nuit-jazz", headers={"Accept": "text/turtle"})
    assert len({french.headers["etag"], english.headers["etag"], turtle.headers["etag"]}) == 3


async def test_last_modified_is_the_harvest_time_and_if_modified_since_works(site):
    response = await site.get("/event/nuit-jazz")
    modified = parsedate_to_datetime(response.headers["last-modified"])
    assert modified == datetime.fromisoformat(HARVESTED)

    same = await site.get("/event/nuit-jazz",
                          headers={"If-Modified-Since": response.headers["last-modified"]})
    assert same.status_code == 304
    earlier = format_datetime(modified - timedelta(seconds=1), usegmt=True)
    changed = await site.get("/event/nuit-jazz", headers={"If-Modified-Since": earlier})
    assert changed.status_code == 200
    garbled = await site.get("/event/nuit-jazz", headers={"If-Modified-Since": "hier soir"})
    assert garbled.status_code == 200


async def test_listing_last_modified_is_the_latest_harvest(site):
    response = await site.get("/")
    assert parsedate_to_datetime(response.headers["last-modified"]) == \
        datetime.fromisoformat(SOURCE_MODIFIED)


@pytest.mark.parametrize("path", [*PAGES, "/static/style.css", "/dumps/affiche.nq.gz",
                                  "/sparql"])
async def test_head_answers_like_get_without_a_body(site, path):
    get = await site.get(path, headers={"Accept-Encoding": "identity"})
    head = await site.head(path, headers={"Accept-Encoding": "identity"})
    assert get.status_code == 200
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers.get("content-length") == get.headers.get("content-length")


async def test_head_of_an_unknown_event_is_404(site):
    response = await site.head("/event/nulle-part")
    assert response.status_code == 404
    assert response.content == b""


async def test_pages_are_gzipped_when_asked(site):
    plain = await site.get("/event/nuit-jazz", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    request = site.build_request("GET", "/event/nuit-jazz", headers={"Accept-Encoding": "gzip"})
    response = await site.send(request, stream=True)
    raw = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    assert response.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["vary"]
    assert len(raw) < len(plain.content)
    assert gzip.decompress(raw) == plain.content


# --- 404 and 410 ---------------------------------------------------------------------------------


async def test_unknown_event_is_a_404_page_for_browsers(site):
    response = await site.get("/event/nulle-part", headers={"Accept": "text/html"})
    assert response.status_code == 404
    tree = lxml.html.fromstring(response.text)
    assert tree.xpath("string(//h1)").startswith("404")


async def test_event_removed_from_its_feed_is_410(agenda_store, tmp_path):
    gone = f"{BASE}/event/retire-du-programme"
    log = ChangeLog(tmp_path)
    description = Graph()
    description.add((URIRef(gone), SCHEMA.name, Literal("Spectacle retiré", lang="fr")))
    log.record("agenda-fictif", {gone: description})
    log.record("agenda-fictif", {})
    async with make_client(agenda_store, tmp_path) as http:
        response = await http.get("/event/retire-du-programme", headers={"Accept": "application/json"})
        page = await http.get("/event/retire-du-programme", headers={"Accept": "text/html"})
        never = await http.get("/event/jamais-vu", headers={"Accept": "application/json"})
    assert response.status_code == 410
    assert response.json()["status"] == 410
    assert page.status_code == 410
    assert lxml.html.fromstring(page.text).xpath("string(//h1)").startswith("410")
    assert never.status_code == 404


# --- sitemap ------------------------------------------------------------------------------------


def sitemap_locs(body: bytes) -> tuple[str, list[tuple[str, str | None]]]:
    root = ET.fromstring(body)
    kind = root.tag.replace(SITEMAP, "")
    child = "url" if kind == "urlset" else "sitemap"
    entries = [(node.findtext(f"{SITEMAP}loc"), node.findtext(f"{SITEMAP}lastmod"))
               for node in root.findall(f"{SITEMAP}{child}")]
    return kind, entries


async def test_sitemap_is_an_index_beyond_the_threshold(agenda_store, data_dir, site):
    kind, whole = sitemap_locs((await site.get("/sitemap.xml")).content)
    assert kind == "urlset"
    assert {f"{BASE}/event/{k}" for k in EVENTS} <= {loc for loc, _ in whole}
    # W3C Datetime, as the store writes it (2026-11-02T09:15:00Z): the harvest time
    assert datetime.fromisoformat(dict(whole)[f"{BASE}/event/nuit-jazz"]) == \
        datetime.fromisoformat(HARVESTED)

    async with make_client(agenda_store, data_dir, sitemap_max_urls=4) as http:
        kind, parts = sitemap_locs((await http.get("/sitemap.xml")).content)
        assert kind == "sitemapindex"
        assert len(parts) == -(-len(whole) // 4)
        gathered = []
        for loc, lastmod in parts:
            response = await http.get(urlsplit(loc).path)
            part_kind, urls = sitemap_locs(response.content)
            assert part_kind == "urlset" and 1 <= len(urls) <= 4
            dated = [m for _, m in urls if m]
            assert lastmod == (max(dated) if dated else None)
            gathered += urls
        missing = await http.get(f"/sitemap-{len(parts) + 1}.xml",
                                 headers={"Accept": "application/json"})
        robots = (await http.get("/robots.txt")).text
    assert gathered == whole
    assert missing.status_code == 404
    assert f"Sitemap: {BASE}/sitemap.xml" in robots.splitlines()


async def test_sitemap_parts_do_not_exist_below_the_threshold(site):
    response = await site.get("/sitemap-1.xml", headers={"Accept": "application/json"})
    assert response.status_code == 404


# --- VoID and DCAT ------------------------------------------------------------------------------


async def test_void_and_dcat_describe_the_dataset_from_the_store(site, agenda_store):
    response = await site.get("/.well-known/void", headers={"Accept": "text/turtle"})
    assert response.status_code == 200
    assert "Accept" in response.headers["vary"]
    graph = Graph().parse(data=response.content, format="turtle")
    dataset = URIRef(f"{BASE}/dataset")
    assert (dataset, RDF.type, VOID.Dataset) in graph
    assert (dataset, RDF.type, DCAT.Dataset) in graph
    triples = len(agenda_store.select("SELECT ?s ?p ?o WHERE { ?s ?p ?o }"))
    assert graph.value(dataset, VOID.triples).toPython() == triples
    assert graph.value(dataset, VOID.entities).toPython() == len(EVENTS)
    assert graph.value(dataset, VOID.sparqlEndpoint) == URIRef(f"{BASE}/sparql")
    assert (dataset, VOID.subset, URIRef(f"{BASE}/source/agenda-fictif")) in graph

    service = URIRef(f"{BASE}/sparql")
    assert (service, RDF.type, DCAT.DataService) in graph
    assert graph.value(service, DCAT.endpointURL) == service
    assert (service, DCAT.servesDataset, dataset) in graph

    downloads = [graph.value(d, DCAT.downloadURL) for d in graph.objects(dataset, DCAT.distribution)
                 if graph.value(d, DCAT.downloadURL) is not None]
    assert URIRef(f"{BASE}/dumps/affiche.nq.gz") in downloads
    for url in downloads:
        distribution = next(graph.subjects(DCAT.downloadURL, url))
        answer = await site.get(urlsplit(str(url)).path)
        assert answer.status_code == 200
        assert graph.value(distribution, DCAT.byteSize).toPython() == len(answer.content)


async def test_void_formats_carry_the_same_graph(site):
    turtle = await site.get("/dataset", params={"format": "turtle"})
    jsonld = await site.get("/.well-known/void", headers={"Accept": "application/ld+json"})
    reference = Graph().parse(data=turtle.content, format="turtle")
    assert isomorphic(Graph().parse(data=jsonld.content, format="json-ld"), reference)


async def test_void_page_for_browsers_shows_the_counts(site):
    tree = html(await site.get("/.well-known/void", headers={"Accept": "text/html"}))
    assert tree.xpath("string(//dd[@class='events-count'])").strip() == str(len(EVENTS))


# --- vocabulary and shapes ----------------------------------------------------------------------


@pytest.mark.parametrize("path,headers", [
    ("/ns", {"Accept": "text/turtle"}),
    ("/ns.nt", {}),
    ("/ns", {"Accept": "application/ld+json;q=0.9, text/html;q=0.1"}),
])
async def test_vocabulary_is_served_with_negotiation(site, path, headers):
    response = await site.get(path, headers=headers)
    media_type = response.headers["content-type"].split(";")[0]
    fmt = {"text/turtle": "turtle", "application/n-triples": "nt",
           "application/ld+json": "json-ld"}[media_type]
    assert isomorphic(Graph().parse(data=response.content, format=fmt), vocabulary())


async def test_discipline_concept_has_its_own_url(site):
    response = await site.get("/ns/discipline/circus", headers={"Accept": "text/turtle"})
    graph = Graph().parse(data=response.content, format="turtle")
    concept = DISCIPLINE["circus"]
    assert Literal("Cirque", lang="fr") in set(graph.objects(concept, SKOS.prefLabel))
    assert set(graph.subjects()) == {concept}
    tree = html(await site.get("/ns/discipline/circus", params={"lang": "fr"}))
    assert "Cirque" in tree.xpath("string(//table)")


@pytest.mark.parametrize("path", ["/ns/discipline/jonglerie", "/ns/autre", "/ns/discipline/..%2F..",
                                  "/shapes/x"])
async def test_unknown_terms_are_404(site, path):
    response = await site.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 404


async def test_shapes_are_served(site):
    response = await site.get("/shapes.ttl")
    assert isomorphic(Graph().parse(data=response.content, format="turtle"), shapes_graph())


async def test_a_new_harvest_shows_at_once_despite_the_agenda_cache(tmp_path):
    """Listings are kept until the data changes: a harvest (a newer dct:modified) shows through."""
    store = EmbeddedStore(None)
    graph = agenda_graph()
    store.replace_graph(f"{BASE}/graph/agenda-fictif", graph)
    async with make_client(store, tmp_path) as http:
        before = listed(html(await http.get("/")))
        assert listed(html(await http.get("/"))) == before == FUTURE
        source = URIRef(f"{BASE}/source/agenda-fictif")
        graph.set((source, DCTERMS.modified, dt("2026-11-03T09:15:30+00:00")))
        extra = e("fanfare-namur")
        graph.add((extra, RDF.type, SCHEMA.Event))
        graph.add((extra, SCHEMA.name, Literal("Fanfare des Bateliers", lang="fr")))
        graph.add((extra, SCHEMA.startDate, dt("2027-03-01T15:00:00+01:00")))
        store.replace_graph(f"{BASE}/graph/agenda-fictif", graph)
        after = listed(html(await http.get("/")))
        calendar = vevents(await http.get("/calendar.ics"))
        sitemap = (await http.get("/sitemap.xml")).text
    assert after == ["fanfare-namur", *FUTURE]
    assert str(extra) in calendar
    assert str(extra) in sitemap


async def test_a_harvest_in_the_same_second_shows_too(tmp_path):
    """Listings are keyed on the store's writes, not on the harvest time: a second harvest with
    the same dct:modified (to the second) still shows at once."""
    store = EmbeddedStore(None)
    graph = agenda_graph()
    store.replace_graph(f"{BASE}/graph/agenda-fictif", graph)
    async with make_client(store, tmp_path) as http:
        assert listed(html(await http.get("/"))) == FUTURE
        cities_before = html(await http.get("/")).xpath('//select[@id="f-city"]/option/@value')
        extra = e("fanfare-namur")
        graph.add((extra, RDF.type, SCHEMA.Event))
        graph.add((extra, SCHEMA.name, Literal("Fanfare des Bateliers", lang="fr")))
        graph.add((extra, SCHEMA.startDate, dt("2027-03-01T15:00:00+01:00")))
        store.replace_graph(f"{BASE}/graph/agenda-fictif", graph)
        assert listed(html(await http.get("/"))) == ["fanfare-namur", *FUTURE]
        assert "fanfare-namur" in (await http.get("/sitemap.xml")).text
    assert cities_before == ["", "Liège", "Lyon", "Namur", "Québec"]


# --- the city filter -----------------------------------------------------------------------------


def _with_a_town_of_past_events() -> Graph:
    """The agenda, plus a venue in Gembloux whose only event is over."""
    g = agenda_graph()
    place, address = URIRef(f"{BASE}/place/salle-5030"), URIRef(f"{BASE}/place/salle-5030#address")
    g.add((place, RDF.type, SCHEMA.Place))
    g.add((place, SCHEMA.name, Literal("Foyer culturel de Gembloux", lang="fr")))
    g.add((place, SCHEMA.address, address))
    g.add((address, SCHEMA.addressLocality, Literal("Gembloux")))
    old = e("bal-gembloux")
    g.add((old, RDF.type, SCHEMA.Event))
    g.add((old, SCHEMA.name, Literal("Bal de la Saint-Guibert", lang="fr")))
    g.add((old, SCHEMA.startDate, dt("2022-09-24T21:00:00+02:00")))
    g.add((old, SCHEMA.location, place))
    return g


async def test_city_filter_offers_only_towns_with_upcoming_events(tmp_path):
    store = EmbeddedStore(None)
    store.replace_graph(f"{BASE}/graph/agenda-fictif", _with_a_town_of_past_events())
    async with make_client(store, tmp_path) as http:
        tree = html(await http.get("/"))
    offered = tree.xpath('//select[@id="f-city"]/option/@value')
    assert offered == ["", "Liège", "Lyon", "Namur", "Québec"]  # no Gembloux: its bal is over
    from publisher.agenda import cities

    assert cities(store, date(2027, 5, 2)) == ["Lyon"]  # only the dance is after the circus
    assert cities(store, date(2030, 1, 1)) == []


# --- rendered pages kept until the next write ----------------------------------------------------


async def test_cached_event_page_follows_a_harvest_and_a_withdrawal(tmp_path):
    store = EmbeddedStore(None)
    graph = agenda_graph()
    store.replace_graph(f"{BASE}/graph/agenda-fictif", graph)
    path = "/event/danse-berges"
    async with make_client(store, tmp_path) as http:
        first = await http.get(path, headers={"Accept": "text/html"})
        again = await http.get(path, headers={"Accept": "text/html"})
        assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
        assert again.headers["last-modified"] == first.headers["last-modified"]
        assert html(again).xpath("//h1/text()") == ["Danse sur les berges"]
        graph.set((e("danse-berges"), SCHEMA.name, Literal("Danse au bord du Rhône", lang="fr")))
        store.replace_graph(f"{BASE}/graph/agenda-fictif", graph)
        renamed = await http.get(path, headers={"Accept": "text/html"})
        assert html(renamed).xpath("//h1/text()") == ["Danse au bord du Rhône"]
        assert renamed.headers["etag"] != first.headers["etag"]
        store.drop_graph(f"{BASE}/graph/agenda-fictif")
        gone = await http.get(path, headers={"Accept": "text/html"})
        assert gone.status_code == 404


async def test_cached_page_is_never_served_in_the_other_language(tmp_path):
    store = EmbeddedStore(None)
    store.replace_graph(f"{BASE}/graph/agenda-fictif", agenda_graph())
    path = "/event/nuit-jazz"
    async with make_client(store, tmp_path) as http:
        pages = {}
        for language in ("en", "fr", "en", "fr"):
            response = await http.get(path, headers={"Accept": "text/html",
                                                     "Accept-Language": language})
            assert "Accept-Language" in response.headers["vary"]
            pages.setdefault(language, set()).add(response.content)
            assert html(response).get("lang") == language
        assert len(pages["en"]) == len(pages["fr"]) == 1
        assert pages["en"] != pages["fr"]
        by_query = await http.get(path + "?lang=en", headers={"Accept": "text/html",
                                                              "Accept-Language": "fr"})
        assert by_query.content in pages["en"]


async def test_page_cache_can_be_turned_off(tmp_path):
    store = EmbeddedStore(None)
    store.replace_graph(f"{BASE}/graph/agenda-fictif", agenda_graph())
    app = create_app(Settings(base_url=BASE, data_dir=tmp_path, page_cache_size=0), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        assert (await http.get("/event/nuit-jazz")).status_code == 200
    assert getattr(app.state, "page_cache", None) is None


def test_description_read_by_patterns_is_the_describe_query(agenda_store):
    """The pattern lookups pages use read exactly what describe.rq answers, for every entity."""
    from publisher.description import (
        Description, Lit, NodeCache, quad_lookup, read_description, to_rdflib,
    )
    from sparql.queries import load_query

    assert quad_lookup(agenda_store) is not None  # the embedded store is read by patterns

    def values(description):  # the store writes 2026-11-02T09:15:00Z and 0; rdflib +00:00 and 0.0
        return {(s, p, to_rdflib(o).toPython() if isinstance(o, Lit) else o)
                for s, p, o in description.triples()}

    cache = NodeCache(100)
    subjects = {str(r["s"]) for r in agenda_store.select("SELECT DISTINCT ?s WHERE { ?s ?p ?o }")}
    assert len(subjects) > 10
    for iri in sorted(subjects):
        expected = Description.from_graph(agenda_store.construct(load_query("describe"),
                                                                 {"root": URIRef(iri)}))
        for _ in range(2):  # without, then with the venues kept in the cache
            read = read_description(agenda_store, iri, cache)
            assert values(read) == values(expected), iri
    assert set(read_description(agenda_store, f"{BASE}/event/nothing-here").triples()) == set()


def test_warmer_computes_the_agenda_after_a_write(tmp_path):
    from publisher.agenda import AgendaFilters
    from publisher.http_cache import store_cache
    from publisher.warmer import Warmer

    store = EmbeddedStore(None)
    app = create_app(Settings(base_url=BASE, data_dir=tmp_path), store=store)
    warmer = Warmer(app, poll_s=0.05, settle_s=0.05).start()
    try:
        store.replace_graph(f"{BASE}/graph/agenda-fictif", agenda_graph())
        generation = store.generation
        deadline = datetime.now() + timedelta(seconds=60)
        key = ("agenda-match", AgendaFilters(), 1, 20)
        while store_cache(app).peek(key, (store_cache(app).peek(("data-modified",), None),
                                          AgendaFilters().first_day)) is None:
            assert datetime.now() < deadline, "the warmer never computed the agenda"
            warmer._stop.wait(0.05)
        match = store_cache(app).peek(key, (store_cache(app).peek(("data-modified",), None),
                                            AgendaFilters().first_day))
        assert [str(i).rsplit("/", 1)[-1] for i in match.events] == FUTURE
        assert store.generation == generation
    finally:
        warmer.stop()


@pytest.mark.parametrize("words", ['" } ; DROP ALL ; #', "jazz\\\" || true", "\\u0022) }", "?city"])
async def test_words_that_look_like_query_syntax_are_only_words(site, words):
    """Filter values are written into the agenda query as escaped RDF terms: never as syntax."""
    response = await site.get("/", params={"q": words})
    assert listed(html(response)) == []
    calendar = await site.get("/calendar.ics", params={"q": words, "city": words})
    assert calendar.status_code == 200 and vevents(calendar) == {}


def test_page_and_node_caches_are_bounded_and_follow_the_generation():
    from publisher.description import Lit, NodeCache
    from publisher.http_cache import CachedPage, PageCache

    pages = PageCache(2)
    for n in range(3):
        assert pages.get(f"/event/{n}", 7) is None
        pages.put(f"/event/{n}", CachedPage(b"<p>%d</p>" % n, "text/html", {}), 7)
    assert len(pages) == 2 and pages.get("/event/0", 7) is None
    assert pages.get("/event/2", 7).body == b"<p>2</p>"
    assert pages.get("/event/2", 8) is None  # a write: everything goes
    pages.put("/event/2", CachedPage(b"old", "text/html", {}), 7)  # rendered before the write
    assert pages.get("/event/2", 8) is None

    nodes = NodeCache(1)
    nodes.get("a", 1)
    nodes.put("a", {"p": [Lit("1")]}, 1)
    nodes.put("b", {"p": [Lit("2")]}, 1)
    assert nodes.get("a", 1) is None and nodes.get("b", 1) == {"p": [Lit("2")]}
    assert nodes.get("b", 2) is None


def test_app_state_is_made_once_when_threads_ask_together():
    import threading
    import time
    from types import SimpleNamespace

    from publisher.http_cache import app_state_once

    app = SimpleNamespace(state=SimpleNamespace())
    made, barrier = [], threading.Barrier(8)

    def make():
        time.sleep(0.05)  # long enough for every thread to be inside an unguarded check
        made.append(object())
        return made[-1]

    def ask(found: list) -> None:
        barrier.wait()
        found.append(app_state_once(app, "cache", make))

    found: list = []
    threads = [threading.Thread(target=ask, args=(found,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and all(value is made[0] for value in found) and len(found) == 8
    assert app_state_once(app, "cache", make) is made[0]
