"""Text and links from feeds are never trusted in pages.

A hostile feed (invented: the "Salle du Grenier" in Liège, whose organiser pastes markup into every
field) is harvested into a real store, then every page kind is rendered and parsed with lxml:
no element, attribute or script comes from the feed's text, the embedded JSON-LD is one intact
`<script>` holding the hostile strings as data, and no `javascript:`/`data:` URL is a link.
"""

from __future__ import annotations

import json

import httpx
import lxml.html
import pytest

from harvester.pipeline import harvest
from harvester.sources import Source
from ontology import SCHEMA
from publisher.app import create_app
from publisher.settings import Settings
from sparql.store import EmbeddedStore

pytestmark = pytest.mark.anyio

BASE = "http://affiche.test"
NAME = 'Concert </script><script id="pwn-name">alert(1)</script> <b id="pwn-b">gras</b>'
DESCRIPTION = ('Une soirée <img id="pwn-img" src=x onerror="alert(2)"> au Grenier. '
               '<!-- </script> --> <iframe id="pwn-iframe" src="https://evil.example/"></iframe>')
PLACE = 'Salle du Grenier <svg id="pwn-svg" onload="alert(3)"></svg>'
ORGANISER = 'Les Amis du <a id="pwn-a" href="javascript:alert(4)">Grenier</a>'
HOSTILE_URLS = ["javascript:alert(5)", "JaVaScRiPt:alert(6)", " javascript:alert(7)",
                "data:text/html;base64,PHNjcmlwdD5hbGVydCg4KTwvc2NyaXB0Pg==",
                "vbscript:msgbox(9)"]
# Every id a hostile string would bring into the page if it were rendered as markup.
INJECTED_IDS = {"pwn-name", "pwn-b", "pwn-img", "pwn-iframe", "pwn-svg", "pwn-a", "pwn-desc"}


def hostile_feed() -> str:
    event = {
        "@context": "https://schema.org",
        "@type": "Event",
        "@id": "javascript:alert(10)",
        "identifier": "grenier-001",
        "name": NAME,
        "description": DESCRIPTION,
        "startDate": "2027-05-14T20:00:00+02:00",
        "url": HOSTILE_URLS[0],
        "image": HOSTILE_URLS[1],
        "sameAs": HOSTILE_URLS[3],
        "location": {
            "@type": "Place", "name": PLACE, "url": HOSTILE_URLS[2], "sameAs": HOSTILE_URLS[4],
            "address": {"@type": "PostalAddress", "streetAddress": '3 <i id="pwn-desc">rue</i> Hors-Château',
                        "postalCode": "4000", "addressLocality": "Liège", "addressCountry": "BE"},
        },
        "organizer": {"@type": "Organization", "name": ORGANISER, "url": HOSTILE_URLS[0],
                      "sameAs": HOSTILE_URLS[1]},
        "performer": {"@type": "Person", "name": "<script>alert(11)</script>", "url": HOSTILE_URLS[3]},
        "offers": {"@type": "Offer", "name": "Plein <u>tarif</u>", "price": "12", "priceCurrency": "EUR",
                   "url": HOSTILE_URLS[4]},
    }
    # `</` escaped as `<\/` (still the same JSON string), or the feed's own page would break.
    block = json.dumps(event, ensure_ascii=False).replace("</", "<\\/")
    return ("<!DOCTYPE html><html><head><title>Grenier</title>"
            f'<script type="application/ld+json">{block}</script></head><body></body></html>')


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("hostile")
    feed = data_dir / "grenier.html"
    feed.write_text(hostile_feed(), encoding="utf-8")
    settings = Settings(base_url=BASE, data_dir=data_dir)
    store = EmbeddedStore(data_dir / "store")
    report = harvest(Source(id="grenier", name="Salle du <b>Grenier</b>", path=feed, format="html"),
                     store, BASE, settings.reports_dir)
    assert report.error is None, report.error
    assert report.summary["published"] == 1, report.to_json()
    yield create_app(settings, store=store), store
    store.close()


@pytest.fixture
async def hostile(hostile_site):
    app, store = hostile_site
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http, store


def page_paths(store: EmbeddedStore) -> dict[str, str]:
    """One page of each kind the hostile feed fed: its event, place, organiser and performer."""
    paths = {}
    for kind, cls in [("event", SCHEMA.Event), ("place", SCHEMA.Place),
                      ("organization", SCHEMA.Organization), ("person", SCHEMA.Person)]:
        rows = store.select("SELECT ?c ?s WHERE { ?s a ?c }", {"c": cls})
        iris = [str(r["s"]) for r in rows if str(r["s"]).startswith(BASE)]
        assert iris, f"no {kind} minted from the hostile feed"
        paths[kind] = iris[0].removeprefix(BASE)
    paths["source report"] = "/source/grenier"
    return paths


def assert_inert(html: str) -> lxml.html.HtmlElement:
    """The page holds no element, handler or link the feed brought in."""
    tree = lxml.html.fromstring(html)
    assert not INJECTED_IDS & set(tree.xpath("//@id")), "feed markup became elements"
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag not in {"iframe", "object", "embed"}
        # The only SVG is the server's own charts (publisher/charts.py); what is inside them is
        # checked like the rest of the page.
        assert element.tag != "svg" or "chart" in element.get("class", "").split(), "feed SVG"
        for attribute, value in element.attrib.items():
            assert not attribute.lower().startswith("on"), (element.tag, attribute)
            if attribute in {"href", "src", "action", "content", "formaction"}:
                cleaned = value.strip().lower()
                assert not cleaned.startswith(("javascript:", "data:", "vbscript:")), (element.tag, value)
    for script in tree.xpath("//script"):
        assert script.get("type") == "application/ld+json", "an executable script in the page"
        json.loads(script.text)  # each JSON-LD block is whole: nothing closed it early
    return tree


async def test_every_page_kind_renders_feed_text_as_text(hostile):
    http, store = hostile
    for kind, path in page_paths(store).items():
        for lang in ("fr", "en"):
            response = await http.get(path, params={"lang": lang}, headers={"Accept": "text/html"})
            assert response.status_code == 200, (kind, response.status_code)
            tree = assert_inert(response.text)
            shown = tree.text_content()
            if kind == "event":
                assert "<script id=\"pwn-name\">" in shown  # the name is shown, as text
                assert '<img id="pwn-img"' in shown


async def test_the_event_jsonld_keeps_hostile_strings_as_data(hostile):
    http, store = hostile
    path = page_paths(store)["event"]
    response = await http.get(path, headers={"Accept": "text/html"})
    tree = assert_inert(response.text)
    blocks = tree.xpath('//script[@type="application/ld+json"]')
    assert len(blocks) == 1
    assert "</" not in blocks[0].text  # escaped, so no HTML parser can see a closing tag
    data = json.loads(blocks[0].text)
    assert data["name"] == NAME and data["description"] == DESCRIPTION


async def test_no_hostile_url_is_rendered_as_a_link_or_image(hostile):
    http, store = hostile
    for path in page_paths(store).values():
        response = await http.get(path, headers={"Accept": "text/html"})
        tree = lxml.html.fromstring(response.text)
        for value in tree.xpath("//a/@href | //img/@src | //link/@href | //meta/@content"):
            assert not any(url.strip().lower() in value.lower() for url in HOSTILE_URLS), value


async def test_the_checker_page_shows_a_hostile_feed_as_text(hostile):
    http, _ = hostile
    for lang in ("fr", "en"):
        response = await http.post("/check", data={"text": hostile_feed(), "format": "html",
                                                    "language": lang})
        assert response.status_code == 200
        tree = assert_inert(response.text)
        assert "alert(1)" in tree.text_content()  # the report shows what the feed said


async def test_a_bad_input_still_fails_cleanly_on_the_checker(hostile):
    http, _ = hostile
    response = await http.post("/check", data={"text": "<script>alert(1)</script>", "format": "ics"})
    assert response.status_code in (400, 422)
    assert_inert(response.text)


@pytest.mark.parametrize("page", [
    '<html><body><a href=" JavaScript:alert(1)">x</a></body></html>',
    '<html><body><img src="x" onerror="alert(1)"></body></html>',
    '<html><head><script type="application/ld+json">{"name": "a</script><script>alert(1)</script>"}'
    "</script></head></html>",
    '<html><body><p id="pwn-b">gras</p></body></html>',
])
def test_the_inertness_probe_catches_each_kind_of_injection(page):
    """The probe used above can fail: each kind of injection it looks for is caught."""
    with pytest.raises((AssertionError, json.JSONDecodeError)):
        assert_inert(page)


CALENDAR_NAME = ("Bal du Grenier\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:injecte@evil.example\r\n"
                 "SUMMARY:Injecté\r\nURL:javascript:alert(12)\r\nDTSTART:20300101T000000Z")


@pytest.fixture
async def calendar_site(tmp_path):
    """One event whose name tries to close its VEVENT and open another in /calendar.ics."""
    event = {"@context": "https://schema.org", "@type": "Event", "identifier": "grenier-bal",
             "name": CALENDAR_NAME, "description": "Ligne 1\nURL:javascript:alert(13)",
             "startDate": "2030-06-21T20:00:00+02:00",
             "location": {"@type": "Place", "name": "Salle du Grenier;\\,X-INJECTED:oui",
                          "address": {"@type": "PostalAddress", "addressLocality": "Liège",
                                      "addressCountry": "BE"}}}
    feed = tmp_path / "bal.jsonld"
    feed.write_text(json.dumps(event, ensure_ascii=False), encoding="utf-8")
    settings = Settings(base_url=BASE, data_dir=tmp_path)
    store = EmbeddedStore(tmp_path / "store")
    report = harvest(Source(id="grenier-bal", name="Grenier", path=feed, format="jsonld"), store, BASE,
                     settings.reports_dir)
    assert report.summary["published"] == 1, report.to_json()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, store=store)),
                                 base_url=BASE) as http:
        yield http
    store.close()


async def test_feed_text_cannot_add_events_or_properties_to_the_calendar_export(calendar_site):
    import icalendar

    response = await calendar_site.get("/calendar.ics")
    assert response.status_code == 200
    calendar = icalendar.Calendar.from_ical(response.content)
    events = calendar.walk("VEVENT")
    assert len(events) == 1  # the name did not close the VEVENT
    event = events[0]
    assert str(event["SUMMARY"]) == CALENDAR_NAME.replace("\r\n", "\n")  # whole, as text
    assert str(event["LOCATION"]).startswith("Salle du Grenier;\\,X-INJECTED:oui")
    assert "X-INJECTED" not in event and "injecte@evil.example" not in str(event["UID"])
    assert "javascript" not in str(event.get("URL", ""))
    lines = response.content.decode("utf-8").replace("\r\n ", "").split("\r\n")
    assert not [line for line in lines if line.startswith(("URL:javascript", "UID:injecte", "X-INJECTED"))]
