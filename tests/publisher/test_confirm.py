"""#10: a harvest held back by a guard (the feed has no event, or loses more than
AFFICHE_HARVEST_MAX_LOSS) says so in the report and the job, and its organiser (or the operator)
confirms it: `POST /api/sources/{id}/confirm` or `affiche harvest ID --accept-loss` harvest the
feed again with the guards lifted once. End to end, with a feed server on 127.0.0.1."""

from __future__ import annotations

import httpx
import lxml.html
import pytest

from harvester.changes import ChangeLog
from harvester.pipeline import load_report
from publisher import cli
from publisher.accounts import Accounts
from publisher.app import create_app
from publisher.settings import Settings
from sparql.store import EmbeddedStore
from tests.reliability.conftest import programme
from tests.reliability.feed_server import Answer, ScriptedServer, start, stop

from .organiser_fixtures import BASE_URL, auth, graph_of

pytestmark = pytest.mark.anyio
SOURCE = "hirondelles"


@pytest.fixture
def feed():
    script = ScriptedServer()
    server, thread = start(script)
    script.answers["/agenda.csv"] = Answer(body=programme(10))
    yield script
    stop(script, server, thread)


@pytest.fixture
async def world(tmp_path, feed):
    settings = Settings(base_url=BASE_URL, data_dir=tmp_path, fetch_allow_hosts=["127.0.0.1"],
                        scheduler_poll_s=0, harvest_max_loss=0.5)
    store = EmbeddedStore(tmp_path / "store")
    accounts = Accounts(tmp_path)
    accounts.add_organiser("hirondelles-namur", "Théâtre des Hirondelles (Namur)")
    accounts.add_organiser("aurores", "Festival des Aurores (Trois-Rivières)")
    tokens = {"operator": accounts.issue_token().token,
              "owner": accounts.issue_token("hirondelles-namur").token,
              "other": accounts.issue_token("aurores").token}
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
        answer = await http.post("/api/sources", headers=auth(tokens, "owner"), json={
            "id": SOURCE, "name": "Théâtre des Hirondelles", "url": f"{feed.base}/agenda.csv",
            "format": "csv", "timezone": "Europe/Brussels"})
        assert answer.status_code == 201, answer.text
        job = await run(app, http, tokens, "harvest")
        assert job["state"] == "done" and job["report"]["summary"]["published"] == 10
        yield app, http, tokens
    app.state.jobs.close()
    store.close()


async def run(app, http, tokens, action: str, who: str = "owner") -> dict:
    answer = await http.post(f"/api/sources/{SOURCE}/{action}", headers=auth(tokens, who))
    assert answer.status_code == 202, answer.text
    app.state.jobs.wait(answer.json()["id"], timeout_s=60)
    return (await http.get(answer.headers["location"], headers=auth(tokens, who))).json()


def published(store) -> set[str]:
    rows = store.select(f"SELECT ?id WHERE {{ GRAPH <{graph_of(SOURCE)}> {{ ?e "
                        "<http://schema.org/startDate> ?d ; <http://schema.org/identifier> ?id } }")
    return {str(r["id"]) for r in rows}


def removals(app) -> int:
    return sum(m.kind == "removed" for m in ChangeLog(app.state.settings.data_dir).members_after(None))


@pytest.mark.parametrize("fault, kept_words", [(programme(3), "would remove 7 of the 10"),
                                               (programme(0), "no event at all")])
async def test_a_held_back_harvest_is_reported_then_confirmed_by_its_organiser(world, feed, fault,
                                                                                kept_words):
    app, http, tokens = world
    store = app.state.store
    before = published(store)
    assert len(before) == 10
    feed.answers["/agenda.csv"] = Answer(body=fault)

    held = await run(app, http, tokens, "harvest")
    assert held["held_back"] is True and held["state"] == "failed"
    assert kept_words in held["error"] and held["report"]["held_back"] is True
    assert held["confirm"] == f"{BASE_URL}/api/sources/{SOURCE}/confirm"
    assert published(store) == before  # the last good data stays
    page = await http.get(f"/source/{SOURCE}?lang=en", headers={"Accept": "text/html"})
    notice = lxml.html.fromstring(page.text).xpath('string(//div[@class="held-back"])')
    assert "Harvest held back" in notice and kept_words in notice
    assert f"/api/sources/{SOURCE}/confirm" in notice and f"affiche harvest {SOURCE} --accept-loss" in notice
    as_json = (await http.get(f"/source/{SOURCE}", headers={"Accept": "application/json"})).json()
    assert as_json["held_back"] is True

    # Only the organiser or the operator may confirm; refusals change nothing.
    other = await http.post(f"/api/sources/{SOURCE}/confirm", headers=auth(tokens, "other"))
    assert other.status_code == 404
    assert (await http.post(f"/api/sources/{SOURCE}/confirm")).status_code == 401
    assert published(store) == before

    confirmed = await run(app, http, tokens, "confirm")
    assert confirmed["state"] == "done" and confirmed["trigger"] == "confirm"
    assert confirmed["held_back"] is False and confirmed["confirm"] is None
    expected = {f"hir-{n:03d}" for n in range(1, len(fault.splitlines()))}
    assert published(store) == expected
    assert removals(app) == 10 - len(expected)  # the feed carries every removal
    assert load_report(app.state.settings.reports_dir, SOURCE)["held_back"] is False
    page = await http.get(f"/source/{SOURCE}?lang=en", headers={"Accept": "text/html"})
    assert not lxml.html.fromstring(page.text).xpath('//div[@class="held-back"]')

    # Nothing is held back any more: nothing to confirm.
    again = await http.post(f"/api/sources/{SOURCE}/confirm", headers=auth(tokens, "owner"))
    assert again.status_code == 409 and "nothing to confirm" in again.json()["detail"]


async def test_the_guard_is_lifted_once_only(world, feed):
    app, http, tokens = world
    feed.answers["/agenda.csv"] = Answer(body=programme(4))
    assert (await run(app, http, tokens, "harvest"))["held_back"] is True
    assert (await run(app, http, tokens, "confirm", who="operator"))["state"] == "done"
    assert len(published(app.state.store)) == 4
    feed.answers["/agenda.csv"] = Answer(body=programme(1))  # 3 of 4 lost: held back again
    held = await run(app, http, tokens, "harvest")
    assert held["held_back"] is True and len(published(app.state.store)) == 4


async def test_there_is_nothing_to_confirm_after_a_good_or_a_failed_harvest(world, feed):
    app, http, tokens = world
    answer = await http.post(f"/api/sources/{SOURCE}/confirm", headers=auth(tokens, "owner"))
    assert answer.status_code == 409  # the last harvest went through
    feed.answers["/agenda.csv"] = Answer(500, b"Internal Server Error", "text/plain")
    failed = await run(app, http, tokens, "harvest")
    assert failed["state"] == "failed" and failed["held_back"] is False and failed["confirm"] is None
    answer = await http.post(f"/api/sources/{SOURCE}/confirm", headers=auth(tokens, "owner"))
    assert answer.status_code == 409  # an unreadable feed is not confirmed: it is fixed
    assert len(published(app.state.store)) == 10


def test_affiche_harvest_accept_loss_publishes_a_held_back_feed(tmp_path, feed, monkeypatch, capsys):
    config = tmp_path / "sources.toml"
    config.write_text(f'[[source]]\nid = "{SOURCE}"\nname = "Théâtre des Hirondelles"\n'
                      f'url = "{feed.base}/agenda.csv"\nformat = "csv"\n', encoding="utf-8")
    for name, value in (("BASE_URL", BASE_URL), ("DATA_DIR", str(tmp_path / "data")),
                        ("CONFIG", str(config)), ("FETCH_ALLOW_HOSTS", "127.0.0.1")):
        monkeypatch.setenv(f"AFFICHE_{name}", value)
    assert cli.main(["harvest"]) == 0
    feed.answers["/agenda.csv"] = Answer(body=programme(2))
    assert cli.main(["harvest"]) == 1  # held back
    reports = tmp_path / "data" / "reports"
    assert load_report(reports, SOURCE)["held_back"] is True

    assert cli.main(["harvest", "--accept-loss"]) == 2  # which sources? it must be said
    assert "name its sources" in capsys.readouterr().err
    assert cli.main(["harvest", "--due", "--accept-loss", SOURCE]) == 2

    assert cli.main(["harvest", SOURCE, "--accept-loss"]) == 0
    assert load_report(reports, SOURCE)["held_back"] is False
    store = EmbeddedStore(tmp_path / "data" / "store")
    try:
        assert published(store) == {"hir-001", "hir-002"}
    finally:
        store.close()
