"""An event's `affiche:harvestedAt` moves only when its description changes.

Each harvest's workers stamp every event with the harvest's time. Written as it is, a re-harvest
where 1 % of the events changed would still rewrite two triples of every event (the old time out,
the new one in), and every event page's `Last-Modified`, the sitemap's `lastmod` and the dumps
would move with it. So the writer keeps, for each event whose description is the one the change
log already holds (the same test that decides whether the event gets a new member), the time
the store already has: `harvestedAt` says when Affiche harvested the description as it is
published now. The source's own `dct:modified` still says when it was last harvested.
"""

from __future__ import annotations

import io
from typing import Iterator

from ontology import AFFICHE
from sparql.store import NTriples, Store

# what follows an event's IRI on its harvestedAt line; searched for as bytes (a regular expression
# anchored at each line start tried every position of the graph: 0.8 s for 10,000 events)
_MARKER = b"> <" + str(AFFICHE.harvestedAt).encode("utf-8") + b"> "


def kept_times(held: bytes, data: bytes, unchanged: frozenset[str]) -> bytes:
    """`data` (the source's new named graph, N-Triples as the store writes them) with the
    `harvestedAt` line of each event in `unchanged` taken from `held` (what the graph holds now);
    an event `held` has no time for keeps the new one. The embedded store calls it with the graph
    it reads anyway to write only what changed (`EmbeddedStore.replace_graph`'s `amend`)."""
    wanted = {iri.encode("utf-8") for iri in unchanged}
    kept = {subject: held[start:end] for subject, start, end in time_lines(held)
            if subject in wanted}
    if not kept:
        return data
    pieces, done = [], 0
    for subject, start, end in time_lines(data):
        line = kept.get(subject)
        if line is not None:
            pieces += (data[done:start], line)
            done = end
    pieces.append(data[done:])
    return b"".join(pieces)


def keep_harvest_times(store: Store, graph_iri: str, published: NTriples,
                       unchanged: frozenset[str]) -> NTriples:
    """`kept_times` for any store: the graph read from it first."""
    if not unchanged:
        return published
    current = io.BytesIO()
    store.dump_graph(current, graph_iri, "nt")
    return NTriples(kept_times(current.getvalue(), published.data, unchanged), published.triples)


def time_lines(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """Each `<subject> affiche:harvestedAt …` line of N-Triples `data`: its subject IRI and where
    the line starts and ends (its newline left out)."""
    at = data.find(_MARKER)
    while at != -1:
        start = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        end = len(data) if end == -1 else end
        subject = data[start + 1:at]
        # the marker inside a literal (a description quoting it) is not a subject's time
        if data[start:start + 1] == b"<" and b">" not in subject and b" " not in subject:
            yield subject, start, end
        at = data.find(_MARKER, end)
