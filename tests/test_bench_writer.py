"""The writer benchmark runs end to end on a tiny region and prints one row per store size."""

from __future__ import annotations

from bench import bench_writer


def test_a_tiny_writer_run_prints_a_row_per_store_size(tmp_path, capsys) -> None:
    assert bench_writer.main(["--sizes", "0,300", "--source-events", "40", "--sources", "2",
                              "--work-dir", str(tmp_path), "--prepared",
                              str(tmp_path / "prepared.pickle")]) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        cells = line.split()
        if len(cells) == 13 and cells[0].replace(",", "").isdigit():
            rows[int(cells[0].replace(",", ""))] = [float(c) for c in cells[1:]]
    assert sorted(rows) == [0, 300]
    for opened, after_load, after_replace, peak, growth, ratio, *seconds in rows.values():
        assert 0 < opened <= peak and after_load <= peak and after_replace <= peak
        assert all(s > 0 for s in seconds)
    assert rows[0][5] == rows[0][9] == rows[0][11] == 1.0  # the empty store is the baseline
    assert (tmp_path / "prepared.pickle").exists()  # kept, to compare two writers on the same input
