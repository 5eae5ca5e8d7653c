"""The benchmark harness keeps working: its synthetic region harvests as planned, and a tiny run
of `python -m bench.run` writes JSON of the documented shape. No timing is asserted here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bench import run, synthetic
from harvester.pipeline import check
from harvester.sources import load_sources
from ontology import SCHEMA

BASE = "http://bench.affiche.test"


def invalid(record: synthetic.Record) -> bool:
    return record.name is None or record.end <= record.start


def test_the_region_harvests_as_planned(tmp_path):
    sources = synthetic.plan_region(300, seed=4)
    assert sum(s.events for s in sources) == 300
    assert {s.format for s in sources} == set(synthetic.FORMATS)
    assert {s.language for s in sources} == {"fr", "en"}
    assert any(r.weekly > 1 for s in sources for r in s.records)  # an iCalendar series
    config = synthetic.write_region(sources, tmp_path)
    planned = {s.id: s for s in sources}
    places = set()
    for source in load_sources(config):
        checked = check(source.location, source, BASE, source.format)
        plan = planned[source.id]
        assert checked.report.summary["found"] == plan.events, source.id
        assert checked.report.summary["quarantined"] == sum(r.weekly for r in plan.records if invalid(r))
        assert not checked.report.feed_problems, checked.report.feed_problems
        places.update(checked.published.objects(None, SCHEMA.location))
    # venues are shared: fewer distinct place IRIs than sources × venues used
    assert 0 < len(places) < sum(len({r.venue.name for r in s.records}) for s in sources)


def test_changing_one_percent_rewrites_few_sources(tmp_path):
    sources = synthetic.plan_region(2000, seed=4)
    synthetic.write_region(sources, tmp_path)
    before = {s.id: (tmp_path / s.file_name).read_bytes() for s in sources}
    changed = synthetic.change_events(sources, 0.01, tmp_path)
    rewritten = {s.id for s in sources if (tmp_path / s.file_name).read_bytes() != before[s.id]}
    assert rewritten == {s.id for s in changed}
    assert 0 < len(rewritten) < len(sources)


def test_a_tiny_region_has_exactly_its_events_and_an_empty_one_is_refused():
    assert sum(s.events for s in synthetic.plan_region(3)) == 3
    with pytest.raises(ValueError):
        synthetic.plan_region(0)


@pytest.mark.server
def test_a_tiny_run_writes_json_of_the_documented_shape(tmp_path):
    out = tmp_path / "run.json"
    assert run.main(["--events", "150", "--seconds", "1", "--rounds", "1", "--sparql-repeat", "2",
                     "--pyshacl-events", "5", "--feed-pages", "1", "--json", str(out),
                     "--work-dir", str(tmp_path)]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["meta"]["events"] == 150
    sections = {f["section"] for f in results["figures"]}
    assert sections == {"full harvest", "affiche harvest", "re-harvest", "one source", "validation",
                        "dumps", "sparql", "event pages", "change feed", "targets", "machine"}
    for figure in results["figures"]:
        assert set(figure) == {"section", "measure", "value", "unit", "note"}
        assert isinstance(figure["value"], (int, float))
    harvested = next(f for f in results["figures"] if f["measure"] == "all formats events/s")
    assert "150 events" in harvested["note"]
    command = next(f for f in results["figures"] if f["section"] == "affiche harvest")
    assert "150 events from 5 sources" in command["note"] and "0 failed" in command["note"]
    assert "10 dump files" in command["note"]  # 5 whole-dataset files (1 dated) and 5 per source
    unchanged = next(f for f in results["figures"] if f["measure"] == "unchanged: store writes")
    assert unchanged["value"] == 0
    assert list(tmp_path.glob("affiche-bench-run-*")) == []  # the work directory is removed

    printed = io.StringIO()
    run.compare(results, results, printed)
    lines = [line for line in printed.getvalue().splitlines() if " -> " in line]
    assert len(lines) == len(results["figures"])


def test_only_the_sections_asked_for_run_with_their_targets(tmp_path):
    out = tmp_path / "run.json"
    assert run.main(["--events", "150", "--only", "harvest,dumps", "--json", str(out),
                     "--work-dir", str(tmp_path)]) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))["figures"]
    assert {f["section"] for f in figures} == {"full harvest", "dumps", "targets", "machine"}
    million = next(f for f in figures if f["measure"].startswith("1M events harvested"))
    assert "extrapolated linearly from 150 events" in million["note"]
    after = next(f for f in figures if f["measure"] == "write_dumps after a harvest (every file)")
    assert "made by the harvest" in after["note"]


def test_unknown_sections_are_refused_with_the_known_ones(capsys):
    assert run._sections("harvest, dumps,pages") == ("dumps", "pages")
    with pytest.raises(SystemExit):
        run.parser().parse_args(["--only", "harvest,dumps,pagez"])
    assert "unknown section pagez: use harvest,command,dumps,sparql" in capsys.readouterr().err


def test_compare_skips_figures_the_old_run_lacks():
    new = {"meta": {"events": 10}, "figures": [
        {"section": "a", "measure": "x", "value": 4.0, "unit": "s", "note": ""},
        {"section": "a", "measure": "y", "value": 1.0, "unit": "s", "note": ""}]}
    old = {"meta": {"events": 10, "started": "then"}, "figures": [
        {"section": "a", "measure": "x", "value": 2.0, "unit": "s", "note": ""}]}
    printed = io.StringIO()
    run.compare(new, old, printed)
    lines = [line for line in printed.getvalue().splitlines() if " -> " in line]
    assert len(lines) == 1 and lines[0].rstrip().endswith("x2.00")


def test_the_readme_documents_the_command():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert "python -m bench.run" in readme
    for action in run.parser()._actions:
        for option in action.option_strings:
            if option.startswith("--") and option != "--help":
                assert option in readme, option


def test_a_load_test_phase_without_answers_is_reported_not_a_crash(capsys) -> None:
    """A very short load test can end a phase before any request is answered: its table and
    the ratios say so with a dash instead of failing on missing percentiles."""
    from bench.load_test import Tally, print_phase, ratio

    print_phase("baseline (no harvest)", Tally(), 1.0)
    assert "0 requests" in capsys.readouterr().out
    assert ratio(None, 12.0) == "—" and ratio(12.0, 0.0) == "—" and ratio(18.0, 12.0) == "1.50"


def test_a_region_directory_is_written_once_and_reused_only_for_the_same_plan(tmp_path):
    region = tmp_path / "region"
    sources = synthetic.plan_region(150, seed=4)
    config = run._written_region(sources, region, "150 4")
    feed = region / sources[0].file_name
    feed.write_bytes(b"kept")  # a reused region is not written again
    assert run._written_region(sources, region, "150 4") == config
    assert feed.read_bytes() == b"kept"
    run._written_region(sources, region, "150 5")  # another plan: written again
    assert feed.read_bytes() != b"kept"
    assert (region / "plan.txt").read_text(encoding="utf-8") == "150 5"


def test_the_page_scale_store_is_bulk_loaded_in_a_new_directory(tmp_path):
    import pyoxigraph as ox

    data_dir, _ = run.bulk_store(tmp_path / "work", 40)  # `work` does not exist yet either
    store = ox.Store.read_only(str(data_dir / "store"))
    events = list(store.query("SELECT ?e WHERE { GRAPH ?g { ?e a ?type } }"))
    assert len(events) >= 40
