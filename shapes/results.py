"""One SHACL validation result as both validation paths produce it, before it becomes a Problem."""

from __future__ import annotations

from dataclasses import dataclass

from rdflib import URIRef
from rdflib.term import Node


@dataclass(frozen=True)
class RawResult:
    focus: Node
    path: URIRef | None
    value: Node | None
    severity: URIRef
    shape: Node | None  # sh:sourceShape: where the bilingual sh:message lives
