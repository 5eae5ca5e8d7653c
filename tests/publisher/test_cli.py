"""The `affiche` command as organisers and operators run it: exit codes, reports, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rdflib import Dataset, Graph

DEMO = Path(__file__).parents[2] / "publisher" / "demo"
ROOT = Path(__file__).parents[2]


def affiche(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(cwd or ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "publisher.cli", *args], capture_output=True,
                          text=True, env=environment, cwd=ROOT, timeout=120)


def test_check_exits_1_and_names_the_incomplete_event_and_field():
    result = affiche("check", str(DEMO / "theatre-lumiere.html"), "--language", "en")
    assert result.returncode == 1, result.stderr
    assert "Lecture publique : nouvelles écritures" in result.stdout
    assert "VIOLATION startDate: The event has no start date" in result.stdout


def test_check_json_is_scriptable():
    result = affiche("check", str(DEMO / "salle-erable.csv"), "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["summary"] == {"found": 4, "published": 3, "quarantined": 1,
                               "warnings": data["summary"]["warnings"]}
    [bad] = [e for e in data["events"] if e["status"] == "quarantined"]
    assert bad["name"] == "Soirée slam" and bad["origin"] == "line 5"
    assert {"severity": "violation", "field": "startDate"}.items() <= bad["problems"][0].items()


def test_check_exits_0_on_a_clean_feed(tmp_path):
    feed = tmp_path / "ok.jsonld"
    feed.write_text(json.dumps({
        "@context": "https://schema.org", "@type": "Event", "name": "Concert", "startDate": "2027-05-01T20:00",
        "location": {"@type": "Place", "name": "Salle", "address": {"@type": "PostalAddress",
                     "addressLocality": "Lille", "addressCountry": "FR"}}}))
    result = affiche("check", str(feed))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"\x00\x01garbage", "cannot tell the feed's format"),
])
def test_check_exits_2_when_the_input_cannot_be_read(tmp_path, content, message):
    path = tmp_path / "feed"
    if content is not None:
        path.write_bytes(content)
    result = affiche("check", str(path))
    assert result.returncode == 2
    assert message in result.stderr


def test_check_exits_2_for_a_feed_that_is_not_what_it_claims(tmp_path):
    path = tmp_path / "feed.ics"
    path.write_text("<html><body>Pas un calendrier</body></html>")
    result = affiche("check", str(path), "--format", "ics")
    assert result.returncode == 2
    assert "does not look like it" in result.stderr


@pytest.mark.parametrize("syntax, parse_as", [("ttl", "turtle"), ("nt", "nt"), ("jsonld", "json-ld")])
def test_convert_prints_the_valid_events(syntax, parse_as):
    result = affiche("convert", str(DEMO / "theatre-lumiere.html"), "--to", syntax)
    assert result.returncode == 0, result.stderr
    graph = Graph().parse(data=result.stdout, format=parse_as)
    names = {str(o) for o in graph.objects(None, None) if str(o) in (
        "Le Phare des songes", "Lecture publique : nouvelles écritures")}
    assert names == {"Le Phare des songes"}
    assert "left out" in result.stderr


def test_convert_to_nquads_names_a_graph():
    result = affiche("convert", str(DEMO / "salle-erable.csv"), "--to", "nq")
    dataset = Dataset().parse(data=result.stdout, format="nquads")
    assert len([g for g in dataset.graphs() if len(g)]) == 1


def test_harvest_prints_a_summary_and_writes_dumps(tmp_path):
    result = affiche("harvest", "--config", str(DEMO / "sources.toml"), "salle-erable",
                     env={"AFFICHE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "salle-erable" in result.stdout and "3" in result.stdout
    assert (tmp_path / "dumps" / "affiche.nq.gz").stat().st_size > 0
    assert "3/3" not in result.stderr and "1/1" in result.stderr  # the progress bar


def test_harvest_of_an_unknown_source_and_a_bad_config(tmp_path):
    result = affiche("harvest", "--config", str(DEMO / "sources.toml"), "nope",
                     env={"AFFICHE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2 and "no source with id nope" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[[source]\n")
    result = affiche("harvest", "--config", str(bad), env={"AFFICHE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2 and "not valid TOML" in result.stderr


def test_unknown_setting_is_refused(tmp_path):
    result = affiche("dump", env={"AFFICHE_DATA_DIR": str(tmp_path), "AFFICHE_BASEURL": "x"})
    assert result.returncode == 2 and "AFFICHE_BASEURL" in result.stderr


def test_harvest_against_a_store_in_use_says_so(tmp_path):
    from sparql.store import EmbeddedStore

    holder = EmbeddedStore(tmp_path / "store")  # as `affiche serve` would hold it
    try:
        result = affiche("harvest", "--config", str(DEMO / "sources.toml"),
                         env={"AFFICHE_DATA_DIR": str(tmp_path)})
    finally:
        holder.close()
    assert result.returncode == 2
    assert "in use by another Affiche process" in result.stderr
