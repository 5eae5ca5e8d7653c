"""Named SPARQL queries, kept as `queries/*.rq` files and loaded by name."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load_query(name: str) -> str:
    path = resources.files(__package__).joinpath("queries", f"{name}.rq")
    return path.read_text(encoding="utf-8")
