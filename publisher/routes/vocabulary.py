"""The vocabulary and the shapes at their own URLs: `/ns`, `/ns/discipline/{id}`, `/shapes`.

The terms keep their fixed namespace (`https://affiche.example/ns#`, `…/ns/discipline/`, shapes
`https://affiche.example/shapes#`) whatever the instance's base URL: every Affiche instance
publishes data with the same terms, so a query written for one works on all. Each instance serves
the files that define them, negotiated like entity pages (HTML, JSON-LD, Turtle, N-Triples,
RDF/XML; `?format=` or `Accept`; suffixes `.ttl`…).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, SKOS

from ontology import DISCIPLINE, SH, vocabulary
from shapes import shapes_graph
from sparql.errors import NotFound

from ..http_cache import cache_control
from ..i18n import page_language
from ..negotiation import HTML, RDF_FORMATS, choose, rdf_response, split_suffix
from ..templating import template_context

router = APIRouter()
CONCEPT = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")
# The vocabulary only changes with a release: a day in caches.
MAX_AGE = 86_400


@dataclass(frozen=True)
class Term:
    iri: str
    label: str
    comment: str
    kinds: str


def _pick(graph: Graph, node, props, language: str) -> str:
    values = [v for p in props for v in graph.objects(node, p) if isinstance(v, Literal)]
    for value in values:
        if value.language == language:
            return str(value)
    return str(values[0]) if values else ""


def terms(graph: Graph, language: str) -> list[Term]:
    listed = []
    for node in sorted({s for s in graph.subjects() if isinstance(s, URIRef)}, key=str):
        kinds = ", ".join(sorted(str(t).rsplit("#", 1)[-1].rsplit("/", 1)[-1]
                                 for t in graph.objects(node, RDF.type)))
        listed.append(Term(
            iri=str(node),
            label=_pick(graph, node, (RDFS.label, SKOS.prefLabel), language),
            comment=_pick(graph, node, (RDFS.comment, SKOS.definition, SH.message), language),
            kinds=kinds))
    return listed


def concept_graph(concept: URIRef) -> Graph:
    graph = Graph()
    for triple in vocabulary().triples((concept, None, None)):
        graph.add(triple)
    return graph


def _answer(request: Request, graph: Graph, title: str, path: str, suffix: str | None) -> Response:
    settings = request.app.state.settings
    media_type = choose(request, suffix)
    headers = {"Cache-Control": cache_control(MAX_AGE)}
    if media_type != HTML:
        copy = Graph()  # serialising binds prefixes: leave the shared, cached graph untouched
        copy += graph
        return rdf_response(copy, media_type, headers)
    language = page_language(request, settings.default_language)
    context = template_context(
        request, language, title=title, terms=terms(graph, language), path=path,
        alternates=[{"media_type": f.media_type, "href": f"{path}{f.suffix}", "name": f.name}
                    for f in RDF_FORMATS])
    return request.app.state.templates.TemplateResponse(
        request, "vocabulary.html", context, headers={**headers, "Vary": "Accept, Accept-Language"})


@router.get("/ns{suffix:path}", include_in_schema=False)
async def ontology_file(request: Request, suffix: str) -> Response:
    name, fmt = split_suffix(suffix)
    if name == "":
        return _answer(request, vocabulary(), "vocabulary", "/ns", fmt)
    match = re.fullmatch(r"/discipline/([^/]*)", name)
    if match is None:
        raise NotFound(f"no term at /ns{name}")
    key = match.group(1)
    if key == "":
        return _answer(request, _scheme_graph(), "discipline", "/ns/discipline/", fmt)
    concept = DISCIPLINE[key]
    if not CONCEPT.match(key) or (concept, None, None) not in vocabulary():
        raise NotFound(f"no discipline {key!r}")
    return _answer(request, concept_graph(concept), "discipline", f"/ns/discipline/{key}", fmt)


def _scheme_graph() -> Graph:
    graph = Graph()
    for concept in vocabulary().subjects(SKOS.inScheme, DISCIPLINE[""]):
        for triple in vocabulary().triples((concept, None, None)):
            graph.add(triple)
    for triple in vocabulary().triples((DISCIPLINE[""], None, None)):
        graph.add(triple)
    return graph


@router.get("/shapes{suffix:path}", include_in_schema=False)
async def shapes_file(request: Request, suffix: str) -> Response:
    name, fmt = split_suffix(suffix)
    if name:
        raise NotFound(f"nothing at /shapes{name}")
    return _answer(request, shapes_graph(), "shapes", "/shapes", fmt)

