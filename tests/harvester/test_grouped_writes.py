"""Sources read by worker processes are written in groups (`pipeline.WRITE_TOGETHER_BYTES`): the
store compacts after loads, and loads made in a row are compacted together. A group is written
once it holds enough N-Triples, once its first source has waited `WRITE_TOGETHER_S`, or when
nothing else is being read."""

from __future__ import annotations

import time

import pytest

from bench import synthetic
from harvester import pipeline
from harvester.changes import ChangeLog
from harvester.fetch import FetchPolicy
from harvester.pipeline import HarvestTask, harvest_all
from harvester.sources import load_sources
from sparql.store import EmbeddedStore

BASE = "http://affiche.test"


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """Five sources of about 300 events, one per format."""
    directory = tmp_path_factory.mktemp("region")
    return load_sources(synthetic.write_region(synthetic.plan_region(1500, seed=5), directory))


def _harvest(sources, data_dir, monkeypatch):
    """Every source read by one of two worker processes: when the writing process received each
    (from its worker) and when it wrote each."""
    store = EmbeddedStore(data_dir / "store")
    received, written_at = [], {}
    real_wait = pipeline.wait

    def recording_wait(*args, **kwargs):
        done, not_done = real_wait(*args, **kwargs)
        received.extend(time.perf_counter() for _ in done)
        return done, not_done

    def done(report) -> None:
        written_at[report.source_id] = time.perf_counter()
        assert len(store.graphs()) == len(written_at)  # written, not only reported

    monkeypatch.setattr(pipeline, "wait", recording_wait)

    reports = harvest_all([HarvestTask(s) for s in sources], store, BASE, data_dir / "reports",
                          FetchPolicy(), ChangeLog(data_dir), workers=2, on_done=done,
                          workers_after_s=0)
    store.close()
    assert all(r.error is None and r.summary["published"] for r in reports)
    assert len(received) == len(sources)
    return received, written_at


def test_a_group_is_written_once_it_holds_enough(region, tmp_path, monkeypatch) -> None:
    # these feeds add up to far less than a group: nothing is written before the last is read
    monkeypatch.setattr(pipeline, "WRITE_TOGETHER_BYTES", 10**12)
    monkeypatch.setattr(pipeline, "WRITE_TOGETHER_S", 3600.0)
    received, written_at = _harvest(region, tmp_path, monkeypatch)
    assert min(written_at.values()) > max(received)


@pytest.mark.parametrize("together_bytes, together_s", [(0, 3600.0), (10**12, 0.0)],
                         ids=["enough bytes", "waited long enough"])
def test_sources_are_written_while_others_are_read(region, tmp_path, monkeypatch,
                                                   together_bytes, together_s) -> None:
    monkeypatch.setattr(pipeline, "WRITE_TOGETHER_BYTES", together_bytes)
    monkeypatch.setattr(pipeline, "WRITE_TOGETHER_S", together_s)
    received, written_at = _harvest(region, tmp_path, monkeypatch)
    # the first source was written before the last one came back from its worker
    assert min(written_at.values()) < max(received)
    assert set(written_at) == {s.id for s in region}


def test_a_harvest_of_many_sources_can_keep_only_their_summaries(region, tmp_path) -> None:
    """`affiche harvest` keeps each source's counts, not its events (600 bytes each: 600 MB for
    a million), once the report is saved; `on_done` still gets the whole report."""
    store = EmbeddedStore(tmp_path / "store")
    whole = {}
    reports = harvest_all([HarvestTask(s) for s in region], store, BASE, tmp_path / "reports",
                          FetchPolicy(), ChangeLog(tmp_path), workers=2, workers_after_s=0,
                          on_done=lambda r: whole.setdefault(r.source_id, r),
                          summaries_only=True)
    store.close()
    assert [r.source_id for r in reports] == [s.id for s in region]
    for report in reports:
        full = whole[report.source_id]
        assert report.events == [] and len(full.events) > 100
        assert report.summary == full.summary and report.summary["published"] > 0
        assert report.error is None and not report.unchanged
    saved = pipeline.load_report(tmp_path / "reports", region[0].id)
    assert len(saved["events"]) == whole[region[0].id].summary["found"]  # saved whole


def test_sources_read_before_a_worker_fails_are_written(region, tmp_path, monkeypatch) -> None:
    """A worker raising (here: the last source's feed history cannot be made, its directory is a
    file) stops the harvest with that error, and the sources that came back before it, waiting
    for their group, are written first, as they would have been one by one."""
    from harvester.incremental import FeedHistory

    monkeypatch.setattr(pipeline, "WRITE_TOGETHER_BYTES", 10**12)
    monkeypatch.setattr(pipeline, "WRITE_TOGETHER_S", 3600.0)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    good, bad = region[:4], region[4]
    # three sources go out first; the failing fifth only once two have come back
    tasks = [HarvestTask(s) for s in good] + [HarvestTask(bad, FeedHistory(blocker, bad.id))]
    store = EmbeddedStore(tmp_path / "store")
    written = []
    with pytest.raises(NotADirectoryError):
        harvest_all(tasks, store, BASE, tmp_path / "reports", FetchPolicy(), ChangeLog(tmp_path),
                    workers=2, workers_after_s=0, on_done=lambda r: written.append(r.source_id))
    graphs = store.graphs()
    store.close()
    assert len(written) >= 2 and bad.id not in written
    assert len(graphs) == len(written)
