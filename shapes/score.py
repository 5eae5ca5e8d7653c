"""A quality score per event and per source, from the problems validation found.

An event starts at 100 and loses, for each problem, the weight of its severity (never below 0); a
source's score is the mean of its events' scores. The weights are documented in the README: a
Violation costs enough that an event with one scores at most 60, and a nice-to-have costs little.
"""

from __future__ import annotations

from typing import Iterable

WEIGHTS = {"violation": 40, "warning": 10, "info": 2}


def event_score(severities: Iterable[str]) -> int:
    """100 minus the weight of each problem's severity, at least 0."""
    return max(0, 100 - sum(WEIGHTS.get(severity, 0) for severity in severities))


def source_score(event_scores: Iterable[int]) -> float | None:
    """The mean of the events' scores, to one decimal; None when the feed held no event."""
    scores = list(event_scores)
    if not scores:
        return None
    return round(sum(scores) / len(scores), 1)
