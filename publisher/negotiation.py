"""Content negotiation: one table of RDF formats, one function choosing the format of an answer.

`?format=` wins over a suffix (`.ttl`…), which wins over `Accept` (quality values honoured). Every
negotiated answer says `Vary: Accept`. Routes build a graph once and hand it to `rdf_response`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from rdflib import Graph

from ontology import AFFICHE, PROV, SCHEMA, XSD
from sparql.accept import best_match
from sparql.errors import NotAcceptable


@dataclass(frozen=True)
class RdfFormat:
    name: str
    media_type: str
    suffix: str
    rdflib_name: str


RDF_FORMATS = (
    RdfFormat("jsonld", "application/ld+json", ".jsonld", "json-ld"),
    RdfFormat("turtle", "text/turtle", ".ttl", "turtle"),
    RdfFormat("ntriples", "application/n-triples", ".nt", "nt"),
    RdfFormat("rdfxml", "application/rdf+xml", ".rdf", "xml"),
)
HTML = "text/html"
BY_MEDIA_TYPE = {f.media_type: f for f in RDF_FORMATS}
BY_SUFFIX = {f.suffix: f for f in RDF_FORMATS}
BY_NAME = {
    **{f.name: f for f in RDF_FORMATS},
    "json-ld": BY_SUFFIX[".jsonld"], "json": BY_SUFFIX[".jsonld"], "ttl": BY_SUFFIX[".ttl"],
    "nt": BY_SUFFIX[".nt"], "n-triples": BY_SUFFIX[".nt"], "rdf": BY_SUFFIX[".rdf"],
    "xml": BY_SUFFIX[".rdf"],
}
OFFERED = [HTML, *(f.media_type for f in RDF_FORMATS)]
# Clients sending these mean JSON-LD or RDF/XML; they are matched after the exact types.
ALIASES = {"application/json": "application/ld+json", "application/xml": "application/rdf+xml",
           "text/n3": "text/turtle", "application/x-turtle": "text/turtle"}

JSONLD_CONTEXT = {
    "@vocab": str(SCHEMA),
    "schema": str(SCHEMA),
    "affiche": str(AFFICHE),
    "prov": str(PROV),
    "xsd": str(XSD),
}


def split_suffix(key: str) -> tuple[str, str | None]:
    """`abc.ttl` -> ("abc", ".ttl"); keys never contain dots, so any known suffix is a format."""
    for suffix in BY_SUFFIX:
        if key.endswith(suffix):
            return key[: -len(suffix)], suffix
    return key, None


def choose(request: Request, suffix: str | None = None) -> str:
    """The media type to answer with: HTML or one of the RDF formats; 406 when none fits."""
    requested = request.query_params.get("format")
    if requested:
        chosen = BY_NAME.get(requested.lower()) or BY_MEDIA_TYPE.get(requested.lower())
        if requested.lower() == "html":
            return HTML
        if chosen is None:
            raise NotAcceptable(
                f"unknown format {requested!r}; use one of: html, {', '.join(f.name for f in RDF_FORMATS)}"
            )
        return chosen.media_type
    if suffix:
        return BY_SUFFIX[suffix].media_type
    accept = request.headers.get("accept")
    media_type = best_match(accept, OFFERED)
    if media_type is None:
        alias = best_match(accept, list(ALIASES))
        media_type = ALIASES.get(alias) if alias else None
    if media_type is None:
        raise NotAcceptable(f"this resource is available as: {', '.join(OFFERED)}")
    return media_type


def serialise(graph: Graph, media_type: str) -> bytes:
    rdf_format = BY_MEDIA_TYPE[media_type]
    for prefix, namespace in (("schema", SCHEMA), ("affiche", AFFICHE), ("prov", PROV)):
        graph.bind(prefix, namespace, replace=True)
    if rdf_format.rdflib_name == "json-ld":
        text = graph.serialize(format="json-ld", context=JSONLD_CONTEXT, auto_compact=True)
        return json.dumps(json.loads(text), ensure_ascii=False, indent=1).encode("utf-8")
    return graph.serialize(format=rdf_format.rdflib_name, encoding="utf-8")


def rdf_response(graph: Graph, media_type: str, headers: dict[str, str] | None = None) -> Response:
    content_type = media_type + ("; charset=utf-8" if media_type != "application/rdf+xml" else "")
    return Response(serialise(graph, media_type), media_type=content_type,
                    headers={"Vary": "Accept", **(headers or {})})
