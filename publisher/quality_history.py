"""Data quality over time, from the score history harvests write (`reports/history/{source}.jsonl`,
one JSON line per harvest that changed something: `harvester.pipeline.append_history`).

A source's score holds until a harvest changes it: an unchanged feed writes no line, and a feed that
could not be read (no score) leaves the last good data published. So a source's score at the end of
a period is its last score written by then, and the sector's is the mean of its sources' scores at
that moment. Periods are ISO weeks while the history spans at most 26 weeks, months beyond (the last
36 at most), so that a young deployment still draws more than one point.

The files are read incrementally (only the bytes appended since the last look) and kept as one score
per source and day, so that a history of years of hourly harvests stays small in memory.
"""

from __future__ import annotations

import json
import os
import threading
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

WEEKS_AT_MOST = 26
MONTHS_AT_MOST = 36


@dataclass
class _FileState:
    inode: int
    size: int
    mtime_ns: int
    offset: int  # bytes read so far (whole lines only)
    days: dict[date, tuple[str, float]] = field(default_factory=dict)  # day -> (started_at, score)
    scores: dict[date, float] | None = None  # `days` in order of day, scores only (None: redo)

    def ordered(self) -> dict[date, float]:
        if self.scores is None:
            self.scores = {day: score for day, (_, score) in sorted(self.days.items())}
        return self.scores


def _entry(line: bytes) -> tuple[date, str, float] | None:
    """A history line's UTC day, start time and score; None for a damaged line or one without a
    score (a feed that could not be read)."""
    try:
        data = json.loads(line)
        started, score = data["started_at"], data["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 100:
            return None
        if len(started) == 25 and started.endswith("+00:00") and started[10] == "T":
            return date.fromisoformat(started[:10]), started, float(score)  # as harvests write it
        when = datetime.fromisoformat(started)
    except (ValueError, TypeError, KeyError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    return when.date(), when.isoformat(), float(score)


class ScoreHistory:
    """Every source's score per day, read from the history directory and kept up to date by
    reading only what harvests appended. Thread-safe; one per app (`score_history`)."""

    def __init__(self, history_dir: Path) -> None:
        self.history_dir = history_dir
        self._files: dict[str, _FileState] = {}
        self._snapshot: tuple[tuple, dict[str, dict[date, float]]] | None = None
        self._lock = threading.Lock()

    def daily_scores(self) -> tuple[tuple, dict[str, dict[date, float]]]:
        """(version, {source: {day: last score of that day}}); the version changes whenever a
        history file does. The answer is shared: do not change it."""
        with self._lock:
            self._refresh()
            version = tuple(sorted((name, s.inode, s.size, s.mtime_ns)
                                   for name, s in self._files.items()))
            if self._snapshot is None or self._snapshot[0] != version:
                scores = {name: state.ordered() for name, state in self._files.items()
                          if state.days}
                self._snapshot = (version, scores)
            return self._snapshot

    def _refresh(self) -> None:
        seen = set()
        try:
            entries = [e for e in os.scandir(self.history_dir)
                       if e.name.endswith(".jsonl") and e.is_file()]
        except FileNotFoundError:
            entries = []
        for entry in entries:
            source_id = entry.name[:-len(".jsonl")]
            try:
                stat = entry.stat()
            except FileNotFoundError:  # removed while we looked
                continue
            seen.add(source_id)
            state = self._files.get(source_id)
            if state and (state.inode, state.size, state.mtime_ns) == (stat.st_ino, stat.st_size,
                                                                      stat.st_mtime_ns):
                continue
            # harvests only append; a file replaced (another inode) or cut shorter is read anew
            if state is None or state.inode != stat.st_ino or stat.st_size < state.offset:
                state = _FileState(stat.st_ino, 0, 0, 0)
            self._files[source_id] = state
            self._read_appended(Path(entry.path), state)
            state.size, state.mtime_ns = stat.st_size, stat.st_mtime_ns
        for gone in set(self._files) - seen:
            del self._files[gone]

    @staticmethod
    def _read_appended(path: Path, state: _FileState) -> None:
        try:
            with path.open("rb") as handle:
                handle.seek(state.offset)
                appended = handle.read()
        except OSError:
            return
        complete = appended[:appended.rfind(b"\n") + 1]  # a line still being written waits
        state.offset += len(complete)
        for line in complete.splitlines():
            entry = _entry(line)
            if entry is None:
                continue
            day, started, score = entry
            kept = state.days.get(day)
            if kept is None or kept[0] <= started:
                state.days[day] = (started, score)
                state.scores = None


@dataclass(frozen=True)
class Period:
    id: str  # "2026-W45" or "2026-11"
    start: date
    end: date


@dataclass
class QualityOverTime:
    """The sector's mean score per period, and each counted source's own score then."""

    unit: str  # "week" | "month" ("" when there is no history)
    periods: list[Period]
    sector: list[float | None]
    counted: list[int]  # how many sources had a score by the end of each period
    by_source: dict[str, list[float | None]]

    def to_json(self) -> dict:
        return {"unit": self.unit, "points": [
            {"period": p.id, "start": p.start.isoformat(), "end": p.end.isoformat(),
             "mean": mean, "sources": counted}
            for p, mean, counted in zip(self.periods, self.sector, self.counted)]}


def _week(day: date) -> Period:
    start = day - timedelta(days=day.weekday())
    year, week, _ = day.isocalendar()
    return Period(f"{year}-W{week:02d}", start, start + timedelta(days=6))


def _month(day: date) -> Period:
    start = day.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return Period(f"{start:%Y-%m}", start, following - timedelta(days=1))


def periods_between(first: date, last: date) -> tuple[str, list[Period]]:
    """Weeks from `first` to `last` when they are at most 26 weeks apart, else months (the last
    36)."""
    if last < first:
        last = first
    if (_week(last).start - _week(first).start).days // 7 < WEEKS_AT_MOST:
        unit, step, first_period = "week", _week, _week(first)
    else:
        unit, step, first_period = "month", _month, _month(first)
    periods = [first_period]
    while periods[-1].end < last:
        periods.append(step(periods[-1].end + timedelta(days=1)))
    return unit, periods[-MONTHS_AT_MOST:] if unit == "month" else periods


def _score_by_end(days: list[date], scores: list[float], end: date) -> float | None:
    position = bisect_right(days, end)
    return scores[position - 1] if position else None


def quality_over_time(daily: dict[str, dict[date, float]], sources: Iterable[str],
                      until: date) -> QualityOverTime:
    """The sector's quality per period from the first score of one of `sources` to `until` (the
    scores hold up to now), and each source's score at the end of each period."""
    counted = {s: daily[s] for s in sources if daily.get(s)}
    if not counted:
        return QualityOverTime("", [], [], [], {})
    first = min(min(days) for days in counted.values())
    unit, periods = periods_between(first, max(until, max(max(d) for d in counted.values())))
    by_source = {}
    for source_id, scores in counted.items():
        days = list(scores)  # in order of day (ScoreHistory sorts them)
        values = list(scores.values())
        by_source[source_id] = [_score_by_end(days, values, p.end) for p in periods]
    sector, how_many = [], []
    for index in range(len(periods)):
        known = [series[index] for series in by_source.values() if series[index] is not None]
        sector.append(round(sum(known) / len(known), 1) if known else None)
        how_many.append(len(known))
    return QualityOverTime(unit, periods, sector, how_many, by_source)


def source_over_time(daily: dict[str, dict[date, float]], source_id: str,
                     sector: QualityOverTime) -> list[float | None]:
    """One source's score at the end of each of the sector's periods, counted in the sector or
    not (a source with no published event yet)."""
    if source_id in sector.by_source:
        return sector.by_source[source_id]
    scores = daily.get(source_id) or {}
    days, values = list(scores), list(scores.values())
    return [_score_by_end(days, values, p.end) for p in sector.periods]
