"""A data directory remembers the base URL its IRIs were minted under: `serve` refuses another,
`demo` harvests again under its own, `clear` starts afresh. Real harvests of the demo feeds into a
real embedded store on disk."""

from __future__ import annotations

import httpx
import pytest

from publisher import base_url
from publisher.app import create_app
from publisher.cli import check_base_url, demo_config, harvest_sources, main
from publisher.settings import Settings
from harvester.sources import load_sources
from sparql.store import EmbeddedStore

pytestmark = pytest.mark.anyio
OLD, NEW = "http://127.0.0.1:8000", "http://127.0.0.1:8123"
SUBJECTS = "SELECT DISTINCT ?s WHERE { ?s ?p ?o }"


def subjects(data_dir) -> set[str]:
    store = EmbeddedStore(data_dir / "store")
    try:
        return {str(row["s"]) for row in store.select(SUBJECTS)} | set(store.graphs())
    finally:
        store.close()


@pytest.fixture
def harvested_under_old(tmp_path):
    settings = Settings(base_url=OLD, data_dir=tmp_path)
    reports = harvest_sources(settings, load_sources(demo_config()), show_progress=False)
    assert all(not r.error for r in reports)
    return tmp_path


def test_first_harvest_records_the_base_url(harvested_under_old):
    assert base_url.recorded_base_url(harvested_under_old) == OLD
    assert any(s.startswith(OLD + "/event/") for s in subjects(harvested_under_old))


def test_serve_refuses_data_of_another_base_and_says_what_to_do(harvested_under_old, monkeypatch,
                                                                capsys):
    monkeypatch.setenv("AFFICHE_BASE_URL", NEW)
    monkeypatch.setenv("AFFICHE_DATA_DIR", str(harvested_under_old))
    assert main(["serve", "--port", "8123"]) == 2
    message = capsys.readouterr().err
    assert OLD in message and NEW in message and "affiche clear" in message
    assert base_url.recorded_base_url(harvested_under_old) == OLD  # nothing changed


def test_serve_accepts_its_own_base(harvested_under_old):
    check_base_url(Settings(base_url=OLD, data_dir=harvested_under_old))  # no exception


def test_a_directory_without_record_is_judged_by_its_graphs(harvested_under_old):
    (harvested_under_old / base_url.FILE_NAME).unlink()
    with pytest.raises(base_url.BaseUrlMismatch, match="8000"):
        check_base_url(Settings(base_url=NEW, data_dir=harvested_under_old))
    check_base_url(Settings(base_url=OLD, data_dir=harvested_under_old))
    assert base_url.recorded_base_url(harvested_under_old) == OLD


def test_a_harvest_under_another_base_is_refused(harvested_under_old):
    with pytest.raises(base_url.BaseUrlMismatch):
        harvest_sources(Settings(base_url=NEW, data_dir=harvested_under_old),
                        load_sources(demo_config()), show_progress=False)


async def test_demo_on_another_port_harvests_again_under_the_new_base(harvested_under_old):
    settings = Settings(base_url=NEW, data_dir=harvested_under_old)
    check_base_url(settings, clear=True)  # what `affiche demo --port 8123` does before harvesting
    reports = harvest_sources(settings, load_sources(demo_config()), show_progress=False)
    assert sum(r.summary["published"] for r in reports) > 0
    minted = subjects(harvested_under_old)
    assert not [s for s in minted if s.startswith(OLD)]
    event = sorted(s for s in minted if s.startswith(NEW + "/event/"))[0]
    assert base_url.recorded_base_url(harvested_under_old) == NEW
    store = EmbeddedStore(harvested_under_old / "store")
    try:
        app = create_app(settings, store=store)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=NEW) as http:
            page = await http.get(event[len(NEW):], headers={"Accept": "text/html"})
            feed = await http.get("/feed", headers={"Accept": "application/n-quads"})
    finally:
        store.close()
    assert page.status_code == 200 and feed.status_code == 200
    assert OLD not in page.text and f'href="{event}"' in page.text
    assert OLD not in feed.text


def test_clear_wants_yes(harvested_under_old, monkeypatch):
    monkeypatch.setenv("AFFICHE_DATA_DIR", str(harvested_under_old))
    monkeypatch.setenv("AFFICHE_BASE_URL", OLD)
    assert main(["clear"]) == 2
    assert subjects(harvested_under_old)
    assert main(["clear", "--yes"]) == 0
    assert subjects(harvested_under_old) == set()
    assert base_url.recorded_base_url(harvested_under_old) is None
