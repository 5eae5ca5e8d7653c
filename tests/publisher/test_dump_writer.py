"""The dump writer that turns one graph's N-Triples into N-Quads and N-Triples at once: whatever
the chunks the store writes, the lines come out whole, named, and counted."""

from __future__ import annotations

import io

import pyoxigraph as ox
import pytest

from publisher.dumps import _GraphWriter

GRAPH = "http://affiche.test/graph/cirque-des-vents"
NT = (
    '<http://affiche.test/event/1> <http://schema.org/name> "Le Grand Chapiteau ."@fr .\n'
    '<http://affiche.test/event/1> <http://schema.org/description> "Deux lignes\\nd\'acrobates ."@fr .\n'
    '<http://affiche.test/event/2> <http://schema.org/name> "Voltige" .\n'
).encode()


def written(chunks: list[bytes]) -> tuple[bytes, bytes, int]:
    nquads, ntriples = io.BytesIO(), io.BytesIO()
    writer = _GraphWriter(GRAPH, nquads=[nquads], ntriples=[ntriples])
    for chunk in chunks:
        writer.write(chunk)
    writer.close()
    return nquads.getvalue(), ntriples.getvalue(), writer.lines


def quads(data: bytes) -> set[ox.Quad]:
    return set(ox.parse(data, ox.RdfFormat.N_QUADS))


@pytest.mark.parametrize("size", [1, 7, 50, len(NT)])
def test_chunks_cut_anywhere_give_the_same_lines(size) -> None:
    nquads, ntriples, lines = written([NT[i:i + size] for i in range(0, len(NT), size)])
    assert ntriples == NT
    assert lines == 3
    expected = {ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(GRAPH))
                for t in ox.parse(NT, ox.RdfFormat.N_TRIPLES)}
    assert quads(nquads) == expected


def test_another_layout_is_tidied_line_by_line() -> None:
    loose = (b"# written by another server\n\n"
             b'<http://affiche.test/event/2> <http://schema.org/name> "Voltige".\n'
             b'<http://affiche.test/event/3> <http://schema.org/name> "Jonglage"  .')  # no final break
    nquads, ntriples, lines = written([loose])
    assert lines == 2
    assert {q.object.value for q in quads(nquads)} == {"Voltige", "Jonglage"}
    assert {q.graph_name.value for q in quads(nquads)} == {GRAPH}
    assert len(list(ox.parse(ntriples, ox.RdfFormat.N_TRIPLES))) == 2


def test_a_line_that_is_not_a_statement_is_refused() -> None:
    with pytest.raises(AssertionError):
        written([b'<http://affiche.test/event/2> <http://schema.org/name> "Voltige"\n'])
