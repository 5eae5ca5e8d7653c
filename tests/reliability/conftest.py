"""Fixtures for reliability tests: a scripted feed server and invented programmes."""

from __future__ import annotations

import pytest

from .feed_server import ScriptedServer, start, stop

HEADER = "identifiant;titre;description;debut;fin;lieu;adresse;code_postal;ville;pays;prix;devise\n"


def programme(count: int, first: int = 1) -> bytes:
    """A CSV programme of the fictional Théâtre des Hirondelles (Namur) with `count` events."""
    rows = [
        f"hir-{n:03d};Concert n°{n} aux Hirondelles;Une soirée de musique de chambre.;"
        f"{(n % 27) + 1:02d}/04/2027 20h00;;Théâtre des Hirondelles;12 rue des Brasseurs;5000;"
        f"Namur;BE;18;EUR\n"
        for n in range(first, first + count)
    ]
    return (HEADER + "".join(rows)).encode("utf-8")


@pytest.fixture
def scripted_server():
    script = ScriptedServer()
    server, thread = start(script)
    try:
        yield script
    finally:
        stop(script, server, thread)
