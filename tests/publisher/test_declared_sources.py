"""Sources declared in the operator's TOML file, withdrawn through the organiser API by the
organiser its `organiser` key names (or the operator): out at once, and still out after a restart
and after `affiche harvest` of the same file."""

from __future__ import annotations

import gzip

import httpx
import lxml.html
import pytest
from rdflib import Dataset

from harvester.pipeline import load_history
from harvester.sources import SourceConfigError, declared_organisers, load_sources
from publisher import cli
from publisher.app import create_app
from publisher.settings import Settings
from sparql.store import EmbeddedStore

from .organiser_fixtures import (AURORES_FEED, BASE_URL, RIDEAU_FEED, auth, event_iris, graph_of, key_of,
                                 two_organisers)

pytestmark = pytest.mark.anyio

TOML = """
[[source]]
id = "rideau-saison"
name = "Saison du Rideau Rouge"
path = "rideau.jsonld"
format = "jsonld"
timezone = "Europe/Brussels"
organiser = "rideau-rouge"

[[source]]
id = "aurores-ete"
name = "Festival des Aurores"
path = "aurores.jsonld"
format = "jsonld"
timezone = "America/Toronto"
"""


@pytest.fixture
def declared(tmp_path, monkeypatch):
    """Two declared sources harvested by `affiche harvest`, two organisers and their tokens."""
    (tmp_path / "rideau.jsonld").write_bytes(RIDEAU_FEED)
    (tmp_path / "aurores.jsonld").write_bytes(AURORES_FEED)
    config = tmp_path / "sources.toml"
    config.write_text(TOML, encoding="utf-8")
    data_dir = tmp_path / "data"
    for name, value in (("BASE_URL", BASE_URL), ("DATA_DIR", str(data_dir)),
                        ("CONFIG", str(config)), ("SCHEDULER_POLL_S", "0")):
        monkeypatch.setenv(f"AFFICHE_{name}", value)
    assert cli.main(["harvest"]) == 0
    tokens = two_organisers(data_dir)
    return Settings(base_url=BASE_URL, data_dir=data_dir, config=config, scheduler_poll_s=0), tokens


class Running:
    """The app over the data directory's embedded store, as `affiche serve` opens it."""

    def __init__(self, settings: Settings) -> None:
        self.store = EmbeddedStore(settings.data_dir / "store")
        self.app = create_app(settings, store=self.store)
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL)

    async def close(self) -> None:
        await self.http.aclose()
        if getattr(self.app.state, "jobs", None) is not None:
            self.app.state.jobs.close()
        self.store.close()

    def graphs(self) -> set[str]:
        return set(self.store.graphs())


def dumped_graphs(settings: Settings) -> set[str]:
    data = gzip.decompress((settings.dumps_dir / "affiche.nq.gz").read_bytes()).decode("utf-8")
    return {str(g.identifier) for g in Dataset().parse(data=data, format="nquads").graphs()}


def test_the_organiser_key_is_read_and_checked(tmp_path):
    config = tmp_path / "sources.toml"
    config.write_text(TOML, encoding="utf-8")
    assert declared_organisers(config) == {"rideau-saison": "rideau-rouge"}
    assert [s.id for s in load_sources(config)] == ["rideau-saison", "aurores-ete"]
    config.write_text(TOML.replace('organiser = "rideau-rouge"', 'organiser = "Rideau Rouge"'),
                      encoding="utf-8")
    with pytest.raises(SourceConfigError, match="organiser"):
        load_sources(config)


async def test_who_sees_a_declared_source(declared):
    settings, tokens = declared
    running = Running(settings)
    try:
        mine = await running.http.get("/api/sources/rideau-saison", headers=auth(tokens, "rideau"))
        assert mine.status_code == 200
        assert mine.json()["declared"] is True and mine.json()["organiser"] == "rideau-rouge"
        assert mine.json()["withdrawn_at"] is None
        for who, source in (("aurores", "rideau-saison"), ("rideau", "aurores-ete")):
            answer = await running.http.get(f"/api/sources/{source}", headers=auth(tokens, who))
            assert answer.status_code == 404, (who, source)
            answer = await running.http.delete(f"/api/sources/{source}", headers=auth(tokens, who))
            assert answer.status_code == 404, (who, source)
        nobodys = await running.http.get("/api/sources/aurores-ete", headers=auth(tokens, "operator"))
        assert nobodys.status_code == 200 and nobodys.json()["organiser"] is None
        push = await running.http.post("/api/sources/rideau-saison/jsonld", content=RIDEAU_FEED,
                                       headers=auth(tokens, "rideau"))
        assert push.status_code == 409 and "declared" in push.json()["detail"]
        assert running.graphs() == {graph_of("rideau-saison"), graph_of("aurores-ete")}
    finally:
        await running.close()


async def test_a_declared_source_withdrawn_through_the_api_stays_withdrawn(declared, capsys):
    settings, tokens = declared
    iris = set(event_iris("rideau-saison").values())
    running = Running(settings)
    try:
        answer = await running.http.delete("/api/sources/rideau-saison", headers=auth(tokens, "rideau"))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"withdrawn": graph_of("rideau-saison"), "removals": 2}
        assert running.graphs() == {graph_of("aurores-ete")}
        for iri in iris:
            assert (await running.http.get(f"/event/{key_of(iri)}")).status_code == 410
        assert (await running.http.get("/source/rideau-saison")).status_code == 410
        assert graph_of("rideau-saison") not in dumped_graphs(settings)
        again = await running.http.delete("/api/sources/rideau-saison", headers=auth(tokens, "rideau"))
        assert again.status_code == 409
    finally:
        await running.close()

    # `affiche harvest` of the same file: the withdrawn source is skipped, the other harvested.
    (settings.config.parent / "aurores.jsonld").write_bytes(AURORES_FEED + b"\n")
    capsys.readouterr()
    assert cli.main(["harvest"]) == 0
    assert "rideau-saison: withdrawn by its organiser" in capsys.readouterr().err
    assert [len(load_history(settings.reports_dir, s)) for s in ("rideau-saison", "aurores-ete")] == [1, 2]
    assert cli.main(["harvest", "rideau-saison"]) == 0  # named: still skipped
    assert "rideau-saison: withdrawn by its organiser" in capsys.readouterr().err
    assert len(load_history(settings.reports_dir, "rideau-saison")) == 1

    restarted = Running(settings)  # a restart: the registry says it, not the process
    try:
        assert restarted.graphs() == {graph_of("aurores-ete")}
        assert graph_of("rideau-saison") not in dumped_graphs(settings)
        page = await restarted.http.get("/source/rideau-saison?lang=fr", headers={"Accept": "text/html"})
        assert page.status_code == 410
        assert "retirée par son organisateur" in lxml.html.fromstring(page.text).text_content()
        listed = await restarted.http.get("/api/sources/rideau-saison", headers=auth(tokens, "operator"))
        assert listed.json()["withdrawn_at"] is not None
        harvest = await restarted.http.post("/api/sources/rideau-saison/harvest",
                                            headers=auth(tokens, "operator"))
        assert harvest.status_code == 409
        for iri in iris:
            assert (await restarted.http.get(f"/event/{key_of(iri)}")).status_code == 410
    finally:
        await restarted.close()


async def test_an_event_of_a_declared_source_withdrawn_stays_out_of_its_harvests(declared):
    settings, tokens = declared
    iris = event_iris("rideau-saison")
    gone, kept = iris["Les marionnettes de la Meuse"], iris["Quatuor à cordes : Ysaÿe"]
    running = Running(settings)
    try:
        answer = await running.http.delete(f"/api/sources/rideau-saison/events/{key_of(gone)}",
                                           headers=auth(tokens, "rideau"))
        assert answer.status_code == 200, answer.text
    finally:
        await running.close()
    (settings.config.parent / "rideau.jsonld").write_bytes(RIDEAU_FEED + b"\n")  # re-parsed
    assert cli.main(["harvest", "rideau-saison"]) == 0
    assert len(load_history(settings.reports_dir, "rideau-saison")) == 2  # it was harvested again
    store = EmbeddedStore(settings.data_dir / "store")
    try:
        rows = store.select(f"SELECT DISTINCT ?e WHERE {{ GRAPH <{graph_of('rideau-saison')}> "
                            "{ ?e <http://schema.org/startDate> ?d } }")
        assert {str(r["e"]) for r in rows} == {kept}
    finally:
        store.close()
