"""The vocabulary Affiche publishes with: namespaces, event types, disciplines, pinned contexts.

Everything here is data shipped with the package (read through importlib.resources), so nothing is
ever fetched from the network at run time.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from rdflib import Graph, Namespace
from rdflib.namespace import DCAT, DCTERMS, PROV, RDF, RDFS, SKOS, XSD

SCHEMA = Namespace("http://schema.org/")
SCHEMA_HTTPS = "https://schema.org/"
AFFICHE = Namespace("https://affiche.example/ns#")
DISCIPLINE = Namespace("https://affiche.example/ns/discipline/")
SH = Namespace("http://www.w3.org/ns/shacl#")

__all__ = [
    "AFFICHE", "DCAT", "DCTERMS", "DISCIPLINE", "EVENT_TYPES", "PROV", "RDF", "RDFS", "SCHEMA",
    "SCHEMA_HTTPS", "SH", "SKOS", "XSD", "disciplines", "schema_context", "vocabulary",
]

# schema.org Event and all its subtypes (schema.org 28). Subtypes that name an art form map to a
# discipline of our SKOS scheme (see disciplines.ttl, affiche:forEventType).
EVENT_TYPES = frozenset(
    SCHEMA[name]
    for name in (
        "Event", "BusinessEvent", "ChildrensEvent", "ComedyEvent", "CourseInstance", "DanceEvent",
        "DeliveryEvent", "EducationEvent", "EventSeries", "ExhibitionEvent", "Festival",
        "FoodEvent", "Hackathon", "LiteraryEvent", "MusicEvent", "PublicationEvent",
        "BroadcastEvent", "OnDemandEvent", "SaleEvent", "ScreeningEvent", "SocialEvent",
        "SportsEvent", "TheaterEvent", "VisualArtsEvent", "UserInteraction",
    )
)


def _read_text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@cache
def schema_context() -> dict:
    """The pinned schema.org JSON-LD context, used whenever a document names schema.org's."""
    return json.loads(_read_text("contexts/schemaorg.jsonld"))["@context"]


@cache
def vocabulary() -> Graph:
    """Affiche's own terms and the discipline scheme, as one graph (read-only by convention)."""
    graph = Graph()
    graph.parse(data=_read_text("affiche.ttl"), format="turtle")
    graph.parse(data=_read_text("disciplines.ttl"), format="turtle")
    return graph


def vocabulary_turtle() -> str:
    return _read_text("affiche.ttl") + "\n" + _read_text("disciplines.ttl")


@cache
def disciplines() -> dict:
    """Discipline IRI -> {"fr": label, "en": label}."""
    graph = vocabulary()
    labels: dict = {}
    for concept in graph.subjects(RDF.type, SKOS.Concept):
        labels[concept] = {lit.language: str(lit) for lit in graph.objects(concept, SKOS.prefLabel)}
    return labels


@cache
def discipline_for_type() -> dict:
    """schema.org event type -> discipline concept."""
    graph = vocabulary()
    return {etype: concept for concept, etype in graph.subject_objects(AFFICHE.forEventType)}


@cache
def discipline_keywords() -> dict:
    """Lower-cased label or keyword (fr/en) -> discipline concept, for feed categories."""
    graph = vocabulary()
    table: dict = {}
    for concept in graph.subjects(RDF.type, SKOS.Concept):
        for prop in (SKOS.prefLabel, SKOS.altLabel):
            for label in graph.objects(concept, prop):
                table[str(label).strip().lower()] = concept
    return table
