"""The organiser's validator: the public checker (/check, /api/check), the source report with its
score, history and SHACL report in RDF, and `affiche check --fail-on`."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import lxml.html
import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from harvester.pipeline import check, harvest, load_history
from harvester.sources import Source
from ontology import SH, schema_context
from publisher.app import create_app
from publisher.cli import main, print_report
from publisher.settings import Settings
from sparql.store import EmbeddedStore

BASE = "http://affiche.test"
CAP = 8 * 1024

# Invented: the Théâtre du Petit-Sablon (Bruxelles); the second event has no start date.
FEED = """<!DOCTYPE html><html lang="fr"><head><title>Programme</title>
<script type="application/ld+json">
{"@context": "https://schema.org", "@type": "TheaterEvent", "@id": "https://petit-sablon.example/agenda/mouette",
 "name": "La Mouette", "description": "Tchekhov, par la Compagnie des Sablons.",
 "startDate": "2027-04-02T20:00:00+02:00", "endDate": "2027-04-02T22:15:00+02:00",
 "image": "https://petit-sablon.example/img/mouette.jpg",
 "eventStatus": "https://schema.org/EventScheduled",
 "location": {"@type": "Place", "name": "Théâtre du Petit-Sablon",
   "address": {"@type": "PostalAddress", "streetAddress": "12 rue des Sablons",
               "addressLocality": "Bruxelles", "postalCode": "1000", "addressCountry": "BE"}},
 "offers": {"@type": "Offer", "price": "18", "priceCurrency": "EUR",
            "url": "https://petit-sablon.example/billets/mouette"}}
</script>
<script type="application/ld+json">
{"@context": "https://schema.org", "@type": "TheaterEvent", "@id": "https://petit-sablon.example/agenda/oncle-vania",
 "name": "Oncle Vania",
 "location": {"@type": "Place", "name": "Théâtre du Petit-Sablon",
   "address": {"@type": "PostalAddress", "streetAddress": "12 rue des Sablons",
               "addressLocality": "Bruxelles", "postalCode": "1000", "addressCountry": "BE"}}}
</script>
</head><body><h1>Programme</h1></body></html>
"""


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(base_url=BASE, data_dir=tmp_path / "data", check_max_bytes=CAP)


@pytest.fixture
def store():
    store = EmbeddedStore(None)
    yield store
    store.close()


@pytest.fixture
async def http(settings, store):
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


class FeedServer:
    """A real HTTP server on 127.0.0.1 serving one feed."""

    def __init__(self, body: bytes, content_type: str = "text/html; charset=utf-8") -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/agenda.html"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def by_name(body: dict) -> dict[str, dict]:
    return {event["name"]: event for event in body["events"]}


# --- POST /api/check ----------------------------------------------------------------------------

pytestmark = pytest.mark.anyio


async def test_api_checks_pasted_text_and_returns_problems_and_jsonld(http):
    response = await http.post("/api/check", data={"text": FEED, "language": "en"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["format"] == "html"
    events = by_name(body)
    assert events["La Mouette"]["status"] == "published"
    assert events["Oncle Vania"]["status"] == "quarantined"
    start = [p for p in events["Oncle Vania"]["problems"] if p["field"] == "startDate"]
    assert start and start[0]["severity"] == "violation"
    assert start[0]["message"].startswith("The event has no start date")
    assert set(start[0]["messages"]) == {"fr", "en"}
    assert events["Oncle Vania"]["score"] < events["La Mouette"]["score"] <= 100
    # Only what would be published comes as JSON-LD, as the event page would embed it.
    [tree] = body["jsonld"]
    assert tree["@context"] == "https://schema.org"
    assert tree["@type"] == "TheaterEvent" and tree["name"] == "La Mouette"
    assert tree["location"]["address"]["addressLocality"] == "Bruxelles"
    pinned = {**tree, "@context": schema_context()}  # never fetch schema.org's context in a test
    graph = Graph().parse(data=json.dumps(pinned), format="json-ld")
    assert len(graph) > 10


async def test_api_checks_an_uploaded_file_and_a_json_body(http):
    upload = await http.post("/api/check", files={"file": ("programme.html", FEED.encode(), "text/html")})
    as_json = await http.post("/api/check", json={"text": FEED, "language": "fr"})
    assert upload.status_code == as_json.status_code == 200
    assert by_name(upload.json()).keys() == by_name(as_json.json()).keys() == {"La Mouette", "Oncle Vania"}
    vania = by_name(as_json.json())["Oncle Vania"]
    assert any(p["message"].startswith("L'événement n'a pas de date de début") for p in vania["problems"])


async def test_an_upload_over_the_cap_is_refused_with_413(http):
    big = FEED.encode() + b"<!--" + b"x" * (CAP + 10) + b"-->"
    response = await http.post("/api/check", files={"file": ("gros.html", big, "text/html")})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    text = await http.post("/api/check", data={"text": "a" * (CAP + 1)})
    assert text.status_code == 413


async def test_an_upload_just_under_the_cap_is_checked(http):
    padded = FEED.encode()
    padded += b"<!--" + b"x" * (CAP - len(padded) - 8) + b"-->"
    assert len(padded) <= CAP
    response = await http.post("/api/check", files={"file": ("programme.html", padded, "text/html")})
    assert response.status_code == 200
    assert response.json()["summary"]["found"] == 2


async def test_a_private_address_is_refused_like_the_harvester_does(http):
    with FeedServer(FEED.encode()) as server:
        response = await http.post("/api/check", data={"url": server.url})
    assert response.status_code == 400
    assert "non-public address" in response.json()["detail"]


async def test_an_allow_listed_url_is_fetched_and_checked(tmp_path, store):
    settings = Settings(base_url=BASE, data_dir=tmp_path, check_max_bytes=CAP,
                        fetch_allow_hosts=["127.0.0.1"])
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        with FeedServer(FEED.encode()) as server:
            response = await client.post("/api/check", data={"url": server.url})
        assert response.status_code == 200, response.text
        assert response.json()["input"] == server.url
        with FeedServer(FEED.encode() + b" " * CAP) as server:
            too_big = await client.post("/api/check", data={"url": server.url})
        assert too_big.status_code == 400 and "over the limit" in too_big.json()["detail"]


@pytest.mark.parametrize("data, message", [
    ({"url": "/etc/passwd"}, "http:// or https://"),
    ({"url": "file:///etc/passwd"}, "http:// or https://"),
    ({}, "exactly one"),
    ({"text": FEED, "url": "https://petit-sablon.example/"}, "exactly one"),
    ({"text": FEED, "format": "docx"}, "unknown format"),
    ({"text": FEED, "timezone": "Europe/Atlantis"}, "unknown time zone"),
    ({"text": "ceci n'est pas un flux"}, "cannot tell the feed's format"),
])
async def test_bad_inputs_get_a_400_that_says_why(http, data, message):
    response = await http.post("/api/check", data=data)
    assert response.status_code == 400
    assert message in response.json()["detail"]


async def test_checking_stores_nothing(http, store, settings):
    before = store.graphs()
    response = await http.post("/api/check", data={"text": FEED})
    assert response.status_code == 200
    assert store.graphs() == before
    assert not settings.reports_dir.exists()


# --- GET/POST /check (the page) -------------------------------------------------------------------


async def test_the_check_page_offers_url_text_and_file(http):
    response = await http.get("/check", headers={"Accept-Language": "fr"})
    assert response.status_code == 200
    form = lxml.html.fromstring(response.text).xpath("//form[@action]")[0]
    assert form.get("method") == "post" and form.get("enctype") == "multipart/form-data"
    names = {e.get("name") for e in form.xpath(".//input|.//textarea|.//select")}
    assert {"url", "text", "file", "format", "timezone"} <= names


async def test_the_check_page_shows_problems_and_jsonld_in_the_visitors_language(http):
    response = await http.post("/check?lang=fr", data={"text": FEED, "language": "fr"})
    assert response.status_code == 200
    tree = lxml.html.fromstring(response.text)
    articles = tree.xpath('//article[contains(@class, "checked-event")]')
    assert len(articles) == 2
    refused = next(a for a in articles if "Oncle Vania" in a.xpath("string(h3)"))
    messages = refused.xpath(".//tr/td[3]/text()")
    assert any(m.startswith("L'événement n'a pas de date de début") for m in messages)
    [published] = tree.xpath('//pre[@class="jsonld"]/code/text()')
    assert json.loads(published)["name"] == "La Mouette"


async def test_the_check_page_explains_a_refusal_in_place(http):
    response = await http.post("/check?lang=en", data={"url": "http://10.0.0.1/agenda"})
    assert response.status_code == 400
    alert = lxml.html.fromstring(response.text).xpath('string(//*[@role="alert"])')
    assert "non-public address" in alert


# --- /source/{id}: score, history, SHACL report ---------------------------------------------------


def harvest_twice(settings, store, tmp_path) -> Source:
    feed = tmp_path / "petit-sablon.html"
    source = Source(id="petit-sablon", name="Théâtre du Petit-Sablon", path=feed, format="html")
    feed.write_text(FEED, encoding="utf-8")
    harvest(source, store, BASE, settings.reports_dir)
    feed.write_text(FEED.replace('"name": "Oncle Vania",', '"name": "Oncle Vania", '
                                 '"startDate": "2027-04-09T20:00:00+02:00",'), encoding="utf-8")
    harvest(source, store, BASE, settings.reports_dir)
    return source


async def test_the_source_keeps_its_score_over_time(http, settings, store, tmp_path):
    harvest_twice(settings, store, tmp_path)
    first, second = load_history(settings.reports_dir, "petit-sablon")
    assert (first["quarantined"], second["quarantined"]) == (1, 0)
    assert second["score"] > first["score"]
    page = await http.get("/source/petit-sablon?lang=en", headers={"Accept": "text/html"})
    tree = lxml.html.fromstring(page.text)
    assert float(tree.xpath("string(//*[@data-score]/@data-score)")) == second["score"]
    rows = tree.xpath('//table[@class="history"]/tbody/tr')
    assert [r.xpath("string(td[2])") for r in rows] == [str(second["score"]), str(first["score"])]


@pytest.mark.parametrize("accept, rdflib_format", [("text/turtle", "turtle"),
                                                   ("application/ld+json", "json-ld")])
async def test_the_source_report_is_a_shacl_report_in_rdf(http, settings, store, tmp_path,
                                                         accept, rdflib_format):
    feed = tmp_path / "petit-sablon.html"
    feed.write_text(FEED, encoding="utf-8")
    harvest(Source(id="petit-sablon", name="Petit-Sablon", path=feed, format="html"), store, BASE,
            settings.reports_dir)
    as_json = (await http.get("/source/petit-sablon", headers={"Accept": "application/json"})).json()
    response = await http.get("/source/petit-sablon", headers={"Accept": accept})
    assert response.status_code == 200 and response.headers["content-type"].startswith(accept)
    graph = Graph().parse(data=response.text, format=rdflib_format)
    [report] = graph.subjects(RDF.type, SH.ValidationReport)
    assert graph.value(report, SH.conforms).toPython() is False
    results = list(graph.objects(report, SH.result))
    assert len(results) == sum(len(e["problems"]) for e in as_json["events"])
    vania = next(e["iri"] for e in as_json["events"] if e["name"] == "Oncle Vania")
    start = [r for r in results if graph.value(r, SH.focusNode) == URIRef(vania)
             and graph.value(r, SH.resultPath) == URIRef("http://schema.org/startDate")]
    assert len(start) == 1
    assert graph.value(start[0], SH.resultSeverity) == SH.Violation
    assert {m.language for m in graph.objects(start[0], SH.resultMessage)} == {"fr", "en"}


async def test_the_source_report_refuses_formats_it_does_not_have(http, settings, store, tmp_path):
    feed = tmp_path / "petit-sablon.html"
    feed.write_text(FEED, encoding="utf-8")
    harvest(Source(id="petit-sablon", name="Petit-Sablon", path=feed, format="html"), store, BASE,
            settings.reports_dir)
    assert (await http.get("/source/petit-sablon", headers={"Accept": "image/png"})).status_code == 406
    assert (await http.get("/source/petit-sablon?format=docx")).status_code == 406


# --- affiche check --fail-on ----------------------------------------------------------------------


@pytest.mark.parametrize("fail_on, clean_exit", [("violation", 0), ("warning", 1)])
def test_fail_on_lets_a_ci_choose_its_threshold(tmp_path, capsys, fail_on, clean_exit):
    head, first, _ = FEED.split("<script", 2)
    feed = tmp_path / "mouette.html"
    feed.write_text(head + "<script" + first + "</head></html>", encoding="utf-8")
    broken = tmp_path / "programme.html"
    broken.write_text(FEED, encoding="utf-8")
    assert main(["check", str(feed), "--json", "--fail-on", fail_on]) == clean_exit
    clean = json.loads(capsys.readouterr().out)
    assert clean["summary"]["quarantined"] == 0 and clean["summary"]["warnings"] > 0
    assert main(["check", str(broken), "--json", "--fail-on", fail_on]) == 1


def test_the_printed_report_gives_scores_origins_and_messages(tmp_path):
    feed = tmp_path / "programme.html"
    feed.write_text(FEED, encoding="utf-8")
    checked = check(feed, Source(id="check", name="check", path=feed), BASE)
    out = io.StringIO()
    print_report(checked.report, "fr", stream=out)
    text = out.getvalue()
    assert f"score {checked.report.score}/100" in text
    vania = next(e for e in checked.report.events if e.name == "Oncle Vania")
    assert f"BAD Oncle Vania — {vania.origin} — {vania.score}/100" in text
    assert "VIOLATION startDate: L'événement n'a pas de date de début" in text


def test_fail_on_refuses_an_unknown_threshold(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "feed.html", "--fail-on", "sometimes"])
    assert exit_info.value.code == 2
