"""The organiser API, for every role: anonymous, organiser, another organiser, operator.

A real embedded store, a real feed server on 127.0.0.1 and the app in process; harvest jobs run in
the app's own job runner, and the tests wait for them through it (never by sleeping).
"""

from __future__ import annotations

import gzip

import httpx
import pytest
import lxml.html
from rdflib import Dataset, URIRef

from harvester.changes import ChangeLog
from publisher.accounts import Accounts
from publisher.app import create_app
from publisher.settings import Settings
from sparql.store import EmbeddedStore
from tests.harvester.site_server import SiteServer, start

from .organiser_fixtures import (AURORES_FEED, BASE_URL, RIDEAU_FEED, auth, event_iris, graph_of, key_of,
                                 two_organisers)

pytestmark = pytest.mark.anyio


@pytest.fixture
def feeds():
    site = SiteServer(routes={
        "/rideau.jsonld": (200, {"Content-Type": "application/ld+json"}, RIDEAU_FEED),
        "/aurores.jsonld": (200, {"Content-Type": "application/ld+json"}, AURORES_FEED),
    })
    server, _ = start(site)
    yield site
    server.shutdown()
    server.server_close()


@pytest.fixture
def world(tmp_path):
    """An app over its own store, two organisers and three tokens."""
    settings = Settings(base_url=BASE_URL, data_dir=tmp_path, fetch_allow_hosts=["127.0.0.1"],
                        api_max_upload_bytes=4096, schedule_min_minutes=60, scheduler_poll_s=0)
    store = EmbeddedStore(tmp_path / "store")
    tokens = two_organisers(tmp_path)
    app = create_app(settings, store=store)
    yield app, tokens
    if getattr(app.state, "jobs", None) is not None:
        app.state.jobs.close()
    store.close()


@pytest.fixture
async def api(world):
    app, tokens = world
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
        yield http


async def register(api, tokens, who="rideau", **fields):
    body = {"id": "rideau-agenda", "name": "Agenda du Rideau Rouge", "language": "fr",
            "timezone": "Europe/Brussels", "license": "CC-BY-4.0", **fields}
    return await api.post("/api/sources", json=body, headers=auth(tokens, who))


def finished(app, answer: httpx.Response) -> dict:
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert answer.headers["location"] == job["url"] == f"{BASE_URL}/api/jobs/{job['id']}"
    assert job["state"] in ("queued", "running", "done", "failed")
    app.state.jobs.wait(job["id"], timeout_s=60)
    return job


async def harvested(api, world, feeds, who="rideau") -> dict:
    app, tokens = world
    answer = await register(api, tokens, who, url=f"{feeds.base}/rideau.jsonld")
    assert answer.status_code == 201, answer.text
    job = finished(app, await api.post("/api/sources/rideau-agenda/harvest", headers=auth(tokens, who)))
    return (await api.get(f"/api/jobs/{job['id']}", headers=auth(tokens, who))).json()


def store_events(app) -> set[str]:
    rows = app.state.store.select("SELECT DISTINCT ?e WHERE { ?e <http://schema.org/startDate> ?d }")
    return {str(r["e"]) for r in rows}


def dumped_subjects(app) -> set[str]:
    data = gzip.decompress((app.state.settings.dumps_dir / "affiche.nq.gz").read_bytes())
    dataset = Dataset().parse(data=data.decode("utf-8"), format="nquads")
    return {str(s) for s, _, _, _ in dataset.quads((None, None, None, None))}


# --- who may call what -------------------------------------------------------------------------

ROUTES = [("GET", "/api/me"), ("GET", "/api/sources"), ("POST", "/api/sources"),
          ("GET", "/api/sources/rideau-agenda"), ("POST", "/api/sources/rideau-agenda/harvest"),
          ("POST", "/api/sources/rideau-agenda/jsonld"), ("DELETE", "/api/sources/rideau-agenda"),
          ("GET", "/api/jobs/abc"), ("GET", "/api/organisers"),
          ("POST", "/api/sources/rideau-agenda/confirm"), ("GET", "/api/sources/rideau-agenda/usage")]


@pytest.mark.parametrize("method, path", ROUTES)
async def test_anonymous_calls_are_401_with_a_bearer_challenge(api, method, path):
    answer = await api.request(method, path)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("token", ["nonsense", "abc.def", "", "0123456789abcdef."])
async def test_wrong_tokens_are_401_invalid_token(api, token):
    answer = await api.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["www-authenticate"] or token == ""


async def test_a_revoked_token_stops_working_at_once(api, world):
    app, tokens = world
    assert (await api.get("/api/me", headers=auth(tokens, "rideau"))).json() == {
        "role": "organiser", "organiser": "rideau-rouge"}
    Accounts(app.state.settings.data_dir).revoke_token(tokens["rideau"].split(".")[0])
    answer = await api.get("/api/me", headers=auth(tokens, "rideau"))
    assert answer.status_code == 401
    assert (await register(api, tokens)).status_code == 401
    assert Accounts(app.state.settings.data_dir).sources() == []


async def test_a_forged_secret_for_a_real_token_id_is_refused(api, world):
    _, tokens = world
    token_id = tokens["rideau"].split(".")[0]
    answer = await api.get("/api/me", headers={"Authorization": f"Bearer {token_id}.forged"})
    assert answer.status_code == 401


async def test_operator_actions_need_an_operator_token(api, world):
    _, tokens = world
    for who in ("rideau", "aurores"):
        assert (await api.get("/api/organisers", headers=auth(tokens, who))).status_code == 403
        answer = await api.post("/api/organisers", json={"id": "opera-gand", "name": "Opéra"},
                                headers=auth(tokens, who))
        assert answer.status_code == 403
    answer = await api.post("/api/organisers", json={"id": "opera-gand", "name": "Opéra de Gand"},
                            headers=auth(tokens, "operator"))
    assert answer.status_code == 201 and answer.json()["id"] == "opera-gand"
    listed = (await api.get("/api/organisers", headers=auth(tokens, "operator"))).json()
    assert [o["id"] for o in listed] == ["aurores", "opera-gand", "rideau-rouge"]
    again = await api.post("/api/organisers", json={"id": "opera-gand", "name": "x"},
                           headers=auth(tokens, "operator"))
    assert again.status_code == 409


async def test_the_api_is_in_the_openapi_document(api):
    document = (await api.get("/openapi.json")).json()
    for path in ("/api/sources", "/api/sources/{source_id}/harvest", "/api/sources/{source_id}/upload",
                 "/api/sources/{source_id}/jsonld", "/api/jobs/{job_id}",
                 "/api/sources/{source_id}/events/{key}"):
        assert path in document["paths"], path
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    schema = document["components"]["schemas"]["SourceIn"]["properties"]
    assert {"url", "format", "language", "timezone", "license", "schedule"} <= set(schema)
    assert "202" in document["paths"]["/api/sources/{source_id}/harvest"]["post"]["responses"]


# --- registering sources -----------------------------------------------------------------------


async def test_an_organiser_registers_and_sees_only_its_sources(api, world, feeds):
    _, tokens = world
    answer = await register(api, tokens, url=f"{feeds.base}/rideau.jsonld", schedule="PT6H")
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["organiser"] == "rideau-rouge" and created["schedule_minutes"] == 360
    assert created["license"] == "https://creativecommons.org/licenses/by/4.0/"
    mine = (await api.get("/api/sources", headers=auth(tokens, "rideau"))).json()
    assert [s["id"] for s in mine] == ["rideau-agenda"]
    assert (await api.get("/api/sources", headers=auth(tokens, "aurores"))).json() == []
    everything = (await api.get("/api/sources", headers=auth(tokens, "operator"))).json()
    assert [s["id"] for s in everything] == ["rideau-agenda"]


async def test_another_organisers_source_looks_like_no_source_at_all(api, world, feeds):
    _, tokens = world
    await register(api, tokens, url=f"{feeds.base}/rideau.jsonld")
    theirs = await api.get("/api/sources/rideau-agenda", headers=auth(tokens, "aurores"))
    nothing = await api.get("/api/sources/nothing-here", headers=auth(tokens, "aurores"))
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json()["title"] == nothing.json()["title"]
    assert "rideau-rouge" not in theirs.text
    for method, suffix in (("POST", "/harvest"), ("DELETE", ""), ("POST", "/jsonld"),
                           ("DELETE", "/events/abc"), ("GET", "/jobs"), ("POST", "/confirm"),
                           ("GET", "/usage")):
        answer = await api.request(method, f"/api/sources/rideau-agenda{suffix}",
                                   headers=auth(tokens, "aurores"), content=b"{}")
        assert answer.status_code == 404, (method, suffix)
    assert (await api.get("/api/sources/rideau-agenda", headers=auth(tokens, "operator"))).status_code == 200


async def test_an_organiser_cannot_register_for_someone_else(api, world, feeds):
    app, tokens = world
    answer = await register(api, tokens, "aurores", organiser="rideau-rouge",
                            url=f"{feeds.base}/rideau.jsonld")
    assert answer.status_code == 403
    answer = await register(api, tokens, "operator", url=f"{feeds.base}/rideau.jsonld")
    assert answer.status_code == 400  # an operator names the organiser
    answer = await register(api, tokens, "operator", organiser="rideau-rouge",
                            url=f"{feeds.base}/rideau.jsonld")
    assert answer.status_code == 201 and answer.json()["organiser"] == "rideau-rouge"


@pytest.mark.parametrize("fields, status, words", [
    ({"schedule": "PT15M"}, 422, "more often than allowed"),
    ({"schedule": "every hour"}, 400, "ISO 8601"),
    ({"url": "http://10.1.2.3/agenda.ics"}, 422, "non-public address"),
    ({"url": "http://[::1]/agenda.ics"}, 422, "non-public address"),
    ({"format": "pdf"}, 400, "unknown format"),
    ({"timezone": "Europe/Liege"}, 400, "time zone"),
    ({"license": "all rights reserved"}, 400, "license"),
    ({"id": "Rideau Agenda"}, 400, "id"),
])
async def test_bad_registrations_are_precise_4xx_and_change_nothing(api, world, feeds, fields, status, words):
    app, tokens = world
    body = {"url": f"{feeds.base}/rideau.jsonld", **fields}
    answer = await register(api, tokens, **body)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    assert Accounts(app.state.settings.data_dir).sources() == []


async def test_a_source_id_is_registered_once(api, world, feeds):
    _, tokens = world
    assert (await register(api, tokens, url=f"{feeds.base}/rideau.jsonld")).status_code == 201
    again = await register(api, tokens, "aurores", url=f"{feeds.base}/aurores.jsonld")
    assert again.status_code == 409


# --- harvest jobs ------------------------------------------------------------------------------


async def test_a_harvest_job_reports_like_affiche_check(api, world, feeds):
    app, tokens = world
    job = await harvested(api, world, feeds)
    assert job["state"] == "done" and job["trigger"] == "api" and job["error"] is None
    report = job["report"]
    assert report["summary"]["found"] == 2 and report["summary"]["published"] == 2
    assert isinstance(report["score"], (int, float))
    assert {e["name"] for e in report["events"]} == {"Les marionnettes de la Meuse",
                                                    "Quatuor à cordes : Ysaÿe"}
    assert store_events(app) == set(event_iris("rideau-agenda").values())
    page = await api.get(f"/event/{key_of(report['events'][0]['iri'])}",
                         headers={"Accept": "application/ld+json"})
    assert page.status_code == 200
    assert set(event_iris("rideau-agenda").values()) <= dumped_subjects(app)
    other = await api.get(f"/api/jobs/{job['id']}", headers=auth(tokens, "aurores"))
    assert other.status_code == 404
    history = (await api.get("/api/sources/rideau-agenda/jobs", headers=auth(tokens, "rideau"))).json()
    assert [j["id"] for j in history] == [job["id"]]


async def test_a_source_without_url_or_push_cannot_be_harvested(api, world):
    _, tokens = world
    assert (await register(api, tokens)).status_code == 201
    answer = await api.post("/api/sources/rideau-agenda/harvest", headers=auth(tokens, "rideau"))
    assert answer.status_code == 409


async def test_pushing_a_jsonld_document_publishes_it(api, world):
    app, tokens = world
    await register(api, tokens)
    answer = await api.post("/api/sources/rideau-agenda/jsonld", content=RIDEAU_FEED,
                            headers={**auth(tokens, "rideau"), "Content-Type": "application/ld+json"})
    job = finished(app, answer)
    done = (await api.get(f"/api/jobs/{job['id']}", headers=auth(tokens, "rideau"))).json()
    assert done["state"] == "done" and done["trigger"] == "upload"
    assert done["report"]["summary"]["published"] == 2
    assert store_events(app) == set(event_iris("rideau-agenda").values())


async def test_pushing_something_that_is_not_json_is_400(api, world):
    app, tokens = world
    await register(api, tokens)
    answer = await api.post("/api/sources/rideau-agenda/jsonld", content=b"BEGIN:VCALENDAR",
                            headers=auth(tokens, "rideau"))
    assert answer.status_code == 400
    assert not (app.state.settings.data_dir / "uploads").exists()


async def test_a_push_without_a_feed_is_400_and_stores_nothing(api, world):
    app, tokens = world
    await register(api, tokens)
    answer = await api.post("/api/sources/rideau-agenda/jsonld", content=b"42",
                            headers=auth(tokens, "rideau"))
    assert answer.status_code == 400
    answer = await api.post("/api/sources/rideau-agenda/upload", headers=auth(tokens, "rideau"),
                            files={"other": ("programme.jsonld", RIDEAU_FEED, "application/ld+json")})
    assert answer.status_code == 400
    assert not (app.state.settings.data_dir / "uploads").exists()
    assert (await api.get("/api/sources/rideau-agenda/jobs", headers=auth(tokens, "rideau"))).json() == []


async def test_uploading_a_file_publishes_it(api, world):
    app, tokens = world
    await register(api, tokens)
    answer = await api.post("/api/sources/rideau-agenda/upload", headers=auth(tokens, "rideau"),
                            files={"file": ("programme.jsonld", RIDEAU_FEED, "application/ld+json")})
    finished(app, answer)
    assert store_events(app) == set(event_iris("rideau-agenda").values())


async def test_an_oversized_upload_is_413_and_stores_nothing(api, world):
    app, tokens = world
    await register(api, tokens)
    big = b" " * 5000 + RIDEAU_FEED
    answer = await api.post("/api/sources/rideau-agenda/upload", headers=auth(tokens, "rideau"),
                            files={"file": ("programme.jsonld", big, "application/ld+json")})
    assert answer.status_code == 413
    answer = await api.post("/api/sources/rideau-agenda/jsonld", content=big,
                            headers=auth(tokens, "rideau"))
    assert answer.status_code == 413
    assert not (app.state.settings.data_dir / "uploads").exists()
    assert store_events(app) == set()
    assert (await api.get("/api/sources/rideau-agenda/jobs", headers=auth(tokens, "rideau"))).json() == []


async def test_a_push_declared_far_over_the_limit_is_refused_before_it_is_read(api, world):
    app, tokens = world
    await register(api, tokens)
    huge = b" " * (4096 + 64 * 1024 + 1) + RIDEAU_FEED
    for path in ("/jsonld", "/upload"):
        answer = await api.post(f"/api/sources/rideau-agenda{path}", content=huge,
                                headers={**auth(tokens, "rideau"), "Content-Type": "application/ld+json"})
        assert answer.status_code == 413
        assert answer.json()["detail"].startswith(f"{len(huge)} bytes sent")
    assert not (app.state.settings.data_dir / "uploads").exists()


# --- withdrawal --------------------------------------------------------------------------------


def members(app) -> list:
    return ChangeLog(app.state.settings.data_dir).members_after(None)


async def test_withdrawing_an_event_takes_it_out_everywhere_at_once(api, world, feeds):
    app, tokens = world
    await harvested(api, world, feeds)
    iris = event_iris("rideau-agenda")
    gone, kept = iris["Les marionnettes de la Meuse"], iris["Quatuor à cordes : Ysaÿe"]
    assert (await api.get("/stats?format=json")).json()["events"] == 2  # now cached
    other = await api.delete(f"/api/sources/rideau-agenda/events/{key_of(gone)}",
                             headers=auth(tokens, "aurores"))
    assert other.status_code == 404 and gone in store_events(app)

    answer = await api.delete(f"/api/sources/rideau-agenda/events/{key_of(gone)}",
                              headers=auth(tokens, "rideau"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"withdrawn": gone, "removals": 1}
    assert store_events(app) == {kept}
    assert (await api.get(f"/event/{key_of(gone)}")).status_code == 410
    assert (await api.get(f"/event/{key_of(kept)}")).status_code == 200
    sparql = await api.get("/sparql", params={"query": f"ASK {{ <{gone}> ?p ?o }}"},
                           headers={"Accept": "application/sparql-results+json"})
    assert sparql.json()["boolean"] is False
    assert gone not in dumped_subjects(app) and kept in dumped_subjects(app)
    assert (await api.get("/stats?format=json")).json()["events"] == 1  # the cache saw it
    assert [(m.event, m.kind) for m in members(app)][-1] == (gone, "removed")

    # The next harvest of the unchanged feed keeps it out.
    finished(app, await api.post("/api/sources/rideau-agenda/harvest", headers=auth(tokens, "rideau")))
    feeds.routes["/rideau.jsonld"] = (200, {"Content-Type": "application/ld+json"},
                                      RIDEAU_FEED + b"\n")
    finished(app, await api.post("/api/sources/rideau-agenda/harvest", headers=auth(tokens, "rideau")))
    assert store_events(app) == {kept}
    assert (await api.get(f"/event/{key_of(gone)}")).status_code == 410


async def test_withdrawing_an_event_the_source_does_not_publish_is_404(api, world, feeds):
    app, tokens = world
    await harvested(api, world, feeds)
    await api.post("/api/sources", json={"id": "aurores-prog", "name": "Aurores",
                                         "url": f"{feeds.base}/aurores.jsonld"},
                   headers=auth(tokens, "aurores"))
    gone = event_iris("rideau-agenda")["Les marionnettes de la Meuse"]
    # Aurores names its own source but Rideau Rouge's event: not theirs to withdraw.
    answer = await api.delete(f"/api/sources/aurores-prog/events/{key_of(gone)}",
                              headers=auth(tokens, "aurores"))
    assert answer.status_code == 404
    assert gone in store_events(app)


async def test_withdrawing_a_source_takes_every_event_out_and_stops_its_harvests(api, world, feeds):
    app, tokens = world
    await harvested(api, world, feeds)
    iris = set(event_iris("rideau-agenda").values())
    answer = await api.delete("/api/sources/rideau-agenda", headers=auth(tokens, "rideau"))
    assert answer.status_code == 200
    assert answer.json() == {"withdrawn": graph_of("rideau-agenda"), "removals": 2}
    assert store_events(app) == set()
    assert graph_of("rideau-agenda") not in app.state.store.graphs()
    for iri in iris:
        assert (await api.get(f"/event/{key_of(iri)}")).status_code == 410
    assert not iris & dumped_subjects(app)
    assert {(m.event, m.kind) for m in members(app) if m.kind == "removed"} == {(i, "removed") for i in iris}
    assert (await api.post("/api/sources/rideau-agenda/harvest",
                           headers=auth(tokens, "rideau"))).status_code == 409
    listed = (await api.get("/api/sources/rideau-agenda", headers=auth(tokens, "rideau"))).json()
    assert listed["withdrawn_at"] is not None and listed["schedule_minutes"] is None


@pytest.mark.parametrize("accept", ["application/json", "text/html", "text/turtle", "*/*"])
async def test_a_withdrawn_source_page_is_gone_not_its_last_report(api, world, feeds, accept):
    app, tokens = world
    await harvested(api, world, feeds)
    assert (await api.get("/source/rideau-agenda", headers={"Accept": accept})).status_code == 200
    await api.delete("/api/sources/rideau-agenda", headers=auth(tokens, "rideau"))
    answer = await api.get("/source/rideau-agenda", headers={"Accept": accept})
    assert answer.status_code == 410
    if accept == "text/html":
        tree = lxml.html.fromstring(answer.text)
        text = " ".join(tree.xpath("string(//main)").split())
        assert "retirée par son organisateur" in text and "withdrawn by its organiser" in text
        assert not tree.xpath('//table[contains(@class, "report")]')
        assert "Les marionnettes de la Meuse" not in answer.text
        listing = lxml.html.fromstring((await api.get("/source/", headers={"Accept": accept})).text)
        assert not listing.xpath('//a[starts-with(@href, "/source/rideau-agenda")]')
    else:
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["status"] == 410 and "withdrawn by its organiser" in problem["detail"]
        assert "retirée" in problem["detail"] and "events" not in problem


async def test_the_feed_carries_the_withdrawal_as_a_tombstone(api, world, feeds):
    app, tokens = world
    await harvested(api, world, feeds)
    gone = event_iris("rideau-agenda")["Quatuor à cordes : Ysaÿe"]
    await api.delete(f"/api/sources/rideau-agenda/events/{key_of(gone)}", headers=auth(tokens, "rideau"))
    page = await api.get("/feed/0", headers={"Accept": "application/trig"})
    data = Dataset().parse(data=page.text, format="trig")
    delete = URIRef("https://www.w3.org/ns/activitystreams#Delete")
    dct = "http://purl.org/dc/terms/"
    tombstones = {o for s, _, o, _ in data.quads((None, URIRef(dct + "isVersionOf"), None, None))
                  if any(data.quads((s, None, delete, None)))}
    assert tombstones == {URIRef(gone)}



# --- usage figures -----------------------------------------------------------------------------


async def test_usage_figures_count_by_kind_and_store_nothing_personal(api, world, feeds):
    app, tokens = world
    await harvested(api, world, feeds)
    key = key_of(event_iris("rideau-agenda")["Quatuor à cordes : Ysaÿe"])
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "Accept": "text/html"}
    crawler = {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)", "Accept": "text/html"}
    for headers in (browser, browser, crawler):
        assert (await api.get(f"/event/{key}", headers=headers)).status_code == 200
    assert (await api.get(f"/event/{key}.jsonld")).status_code == 200
    assert (await api.get(f"/event/{key}", headers={"Accept": "text/turtle"})).status_code == 200
    assert (await api.get("/dumps/source-rideau-agenda.nq.gz")).status_code == 200
    assert (await api.get("/event/rideau-agenda-000000000000")).status_code == 404  # not counted

    answer = await api.get("/api/sources/rideau-agenda/usage", headers=auth(tokens, "rideau"))
    assert answer.status_code == 200
    assert answer.json()["totals"] == {"page_human": 2, "page_crawler": 1, "jsonld": 1, "rdf": 1,
                                       "dump": 1, "sparql": 0}
    assert answer.json()["last_30_days"] == answer.json()["totals"]
    [month] = answer.json()["by_month"]
    assert {k: v for k, v in month.items() if k != "month"} == answer.json()["totals"]
    assert (await api.get("/api/sources/rideau-agenda/usage",
                          headers=auth(tokens, "aurores"))).status_code == 404
    stored = (app.state.settings.data_dir / "usage.sqlite").read_bytes()
    assert b"Googlebot" not in stored and b"Firefox" not in stored and b"127.0.0.1" not in stored



async def test_head_requests_are_not_counted_as_views(api, world, feeds):
    app, tokens = world
    await harvested(api, world, feeds)
    key = key_of(event_iris("rideau-agenda")["Quatuor à cordes : Ysaÿe"])
    browser = {"User-Agent": "Mozilla/5.0 Firefox/128.0", "Accept": "text/html"}
    for _ in range(3):
        head = await api.head(f"/event/{key}", headers=browser)
        assert head.status_code == 200 and head.headers["content-type"].startswith("text/html")
        assert (await api.head(f"/event/{key}.jsonld")).status_code == 200
        assert (await api.head("/dumps/source-rideau-agenda.nq.gz")).status_code == 200
    usage = await api.get("/api/sources/rideau-agenda/usage", headers=auth(tokens, "rideau"))
    assert set(usage.json()["totals"].values()) == {0}
    assert (await api.get(f"/event/{key}", headers=browser)).status_code == 200
    usage = await api.get("/api/sources/rideau-agenda/usage", headers=auth(tokens, "rideau"))
    assert usage.json()["totals"]["page_human"] == 1


async def sparql_inclusions(api, tokens) -> int:
    usage = await api.get("/api/sources/rideau-agenda/usage", headers=auth(tokens, "rideau"))
    return usage.json()["totals"]["sparql"]


async def test_sparql_answers_naming_a_sources_events_count_as_inclusions(api, world, feeds):
    app, tokens = world
    await harvested(api, world, feeds)
    app.state.settings = app.state.settings.model_copy(update={"usage_sparql_sample": 1})
    accept = {"Accept": "application/sparql-results+json"}
    named = "SELECT ?e WHERE { ?e <http://schema.org/startDate> ?d }"
    answer = await api.get("/sparql", params={"query": named}, headers=accept)
    assert len(answer.json()["results"]["bindings"]) == 2
    assert await sparql_inclusions(api, tokens) == 1  # one answer, however many of its events
    answer = await api.post("/sparql", data={"query": named},
                            headers={"Accept": "text/csv"})
    assert answer.status_code == 200
    assert await sparql_inclusions(api, tokens) == 2
    for query in ("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",  # names no event
                  "ASK { ?s ?p ?o }", "SELECT ?e WHERE { ?e ?p",  # malformed: 400
                  "SELECT ?e WHERE { ?e <http://schema.org/name> 'nothing' }"):
        await api.get("/sparql", params={"query": query}, headers=accept)
    assert await sparql_inclusions(api, tokens) == 2


async def test_sparql_inclusions_are_sampled_and_weighted(api, world, feeds):
    app, tokens = world
    await harvested(api, world, feeds)
    app.state.settings = app.state.settings.model_copy(update={"usage_sparql_sample": 5})
    query = {"query": "SELECT ?e WHERE { ?e <http://schema.org/startDate> ?d }"}
    for _ in range(10):
        await api.get("/sparql", params=query, headers={"Accept": "application/sparql-results+json"})
    assert await sparql_inclusions(api, tokens) == 10  # two answers read, each counts five
    app.state.settings = app.state.settings.model_copy(update={"usage_sparql_sample": 0})
    for _ in range(10):
        await api.get("/sparql", params=query, headers={"Accept": "application/sparql-results+json"})
    assert await sparql_inclusions(api, tokens) == 10  # 0: not measured


# --- the OpenAPI document says what errors look like -------------------------------------------


def api_operations(document):
    return [(path, method, operation) for path, item in document["paths"].items()
            if path.startswith("/api/") for method, operation in item.items()]


async def test_every_api_error_is_documented_as_problem_json(api):
    document = (await api.get("/openapi.json")).json()
    assert "HTTPValidationError" not in document.get("components", {}).get("schemas", {})
    operations = api_operations(document)
    assert len(operations) >= 15
    for path, method, operation in operations:
        errors = {code: r for code, r in operation["responses"].items() if code.startswith("4")}
        assert "4XX" in errors, (method, path)
        if path != "/api/check":  # the public checker needs no token
            assert {"400", "401"} <= set(errors), (method, path)
        for code, response in errors.items():
            assert list(response["content"]) == ["application/problem+json"], (method, path, code)
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema["title"] == "Problem"
            assert {"title", "status", "detail", "instance"} <= set(schema["required"])
    responses = document["paths"]["/api/sources"]["post"]["responses"]
    assert {"403", "409", "422"} <= set(responses)
    assert "413" in document["paths"]["/api/sources/{source_id}/upload"]["post"]["responses"]


@pytest.mark.parametrize("case", ["validation", "unprocessable", "conflict", "not found"])
async def test_api_errors_match_the_documented_problem_schema(api, world, feeds, case):
    _, tokens = world
    document = (await api.get("/openapi.json")).json()
    if case == "validation":
        answer = await register(api, tokens, id="Pas Valide", url=f"{feeds.base}/rideau.jsonld")
        expected = 400
    elif case == "unprocessable":
        answer = await register(api, tokens, url=f"{feeds.base}/rideau.jsonld", schedule="PT5M")
        expected = 422
    elif case == "conflict":
        await register(api, tokens)
        answer = await api.post("/api/sources/rideau-agenda/confirm", headers=auth(tokens, "rideau"))
        expected = 409
    else:
        answer = await api.get("/api/sources/nothing-here", headers=auth(tokens, "rideau"))
        expected = 404
    assert answer.status_code == expected, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    path = "/api/sources/{source_id}/confirm" if case == "conflict" else (
        "/api/sources/{source_id}" if case == "not found" else "/api/sources")
    method = "get" if case == "not found" else "post"
    schema = document["paths"][path][method]["responses"][str(expected)]["content"][
        "application/problem+json"]["schema"]
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])
    types = {"string": str, "integer": int}
    for name, value in body.items():
        assert isinstance(value, types[schema["properties"][name]["type"]]), name
    assert body["status"] == expected and body["detail"]
