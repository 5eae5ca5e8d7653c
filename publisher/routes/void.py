"""`/.well-known/void` and `/dataset`: the dataset described in VoID and DCAT, from its own data.

Built on each request from the settings (titles, URLs), the dumps directory (distributions with size
and checksum) and the store (counts, sources as subsets), so the description cannot drift from what
is served. HTML for browsers, RDF by `Accept` or `?format=`, like every entity.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, XSD
from starlette.concurrency import run_in_threadpool

from ontology import SCHEMA
from sparql.queries import load_query

from ..dumps import list_dumps
from ..http_cache import cache_control, data_modified, store_cache
from ..i18n import page_language
from ..negotiation import HTML, RDF_FORMATS, choose, rdf_response
from ..templating import template_context

router = APIRouter()
VOID = Namespace("http://rdfs.org/ns/void#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
IANA = "https://www.iana.org/assignments/media-types/"
VOCABULARY = URIRef("https://affiche.example/ns")


@dataclass(frozen=True)
class Counts:
    triples: int
    subjects: int
    properties: int
    objects: int
    events: int


def store_counts(store) -> Counts:
    figures = store.select(load_query("dataset_counts"))[0]
    events = store.select(load_query("count_events"))[0]
    return Counts(*(int(figures[k].toPython()) for k in ("triples", "subjects", "properties",
                                                       "objects")),
                  events=int(events["events"].toPython()))


def dataset_graph(settings, counts: Counts, sources: list[dict], dumps: list,
                  modified_iso: str | None) -> Graph:
    base = settings.base_url
    dataset, service = URIRef(f"{base}/dataset"), URIRef(f"{base}/sparql")
    graph = Graph()
    for prefix, namespace in (("void", VOID), ("dcat", DCAT), ("dct", DCTERMS), ("spdx", SPDX),
                              ("foaf", FOAF)):
        graph.bind(prefix, namespace)
    add = graph.add
    add((dataset, RDF.type, VOID.Dataset))
    add((dataset, RDF.type, DCAT.Dataset))
    add((dataset, DCTERMS.title, Literal(settings.site_name)))
    add((dataset, DCTERMS.description, Literal(
        "Événements culturels moissonnés chez leurs organisateurs, en données ouvertes liées.", lang="fr")))
    add((dataset, DCTERMS.description, Literal(
        "Cultural events harvested from their organisers, as linked open data.", lang="en")))
    add((dataset, FOAF.homepage, URIRef(f"{base}/")))
    add((dataset, DCAT.landingPage, URIRef(f"{base}/")))
    if modified_iso:
        add((dataset, DCTERMS.modified, Literal(modified_iso, datatype=XSD.dateTime)))
    add((dataset, VOID.triples, Literal(counts.triples)))
    add((dataset, VOID.entities, Literal(counts.events)))
    add((dataset, VOID.distinctSubjects, Literal(counts.subjects)))
    add((dataset, VOID.properties, Literal(counts.properties)))
    add((dataset, VOID.distinctObjects, Literal(counts.objects)))
    add((dataset, VOID.uriSpace, Literal(f"{base}/")))
    add((dataset, VOID.vocabulary, URIRef(str(SCHEMA))))
    add((dataset, VOID.vocabulary, VOCABULARY))
    add((dataset, VOID.sparqlEndpoint, service))
    add((dataset, VOID.rootResource, URIRef(f"{base}/")))
    add((dataset, DCTERMS.conformsTo, URIRef(f"{base}/shapes")))
    for source in sources:
        add((dataset, VOID.subset, source["source"]))
        add((dataset, DCTERMS.hasPart, source["source"]))
        add((source["source"], RDF.type, VOID.Dataset))
        add((source["source"], RDF.type, DCAT.Dataset))
        add((source["source"], DCTERMS.title, source["title"]))
        if source.get("license") is not None:
            add((source["source"], DCTERMS.license, source["license"]))
    for dump in dumps:
        url = URIRef(f"{base}/dumps/{dump.name}")
        distribution = URIRef(f"{base}/dataset#{dump.name}")
        add((dataset, VOID.dataDump, url))
        add((dataset, DCAT.distribution, distribution))
        add((distribution, RDF.type, DCAT.Distribution))
        add((distribution, DCTERMS.title, Literal(dump.name)))
        add((distribution, DCAT.downloadURL, url))
        add((distribution, DCAT.accessURL, URIRef(f"{base}/dumps/")))
        add((distribution, DCAT.mediaType, URIRef(IANA + dump.media_type)))
        add((distribution, DCAT.compressFormat, URIRef(IANA + "application/gzip")))
        add((distribution, DCAT.byteSize, Literal(dump.size, datatype=XSD.nonNegativeInteger)))
        add((distribution, DCTERMS.modified, Literal(dump.modified, datatype=XSD.dateTime)))
        checksum = BNode()
        add((distribution, SPDX.checksum, checksum))
        add((checksum, RDF.type, SPDX.Checksum))
        add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
        add((checksum, SPDX.checksumValue, Literal(dump.sha256, datatype=XSD.hexBinary)))
    add((service, RDF.type, DCAT.DataService))
    add((service, DCTERMS.title, Literal(f"{settings.site_name} SPARQL")))
    add((service, DCAT.endpointURL, service))
    add((service, DCAT.endpointDescription, service))
    add((service, DCAT.servesDataset, dataset))
    add((service, DCTERMS.conformsTo, URIRef("https://www.w3.org/TR/sparql11-protocol/")))
    sparql_distribution = URIRef(f"{base}/dataset#sparql")
    add((dataset, DCAT.distribution, sparql_distribution))
    add((sparql_distribution, RDF.type, DCAT.Distribution))
    add((sparql_distribution, DCAT.accessURL, service))
    add((sparql_distribution, DCAT.accessService, service))
    return graph


def _modified_iso(store) -> str | None:
    rows = store.select(load_query("last_harvest"))
    return str(rows[0]["modified"]) if rows and rows[0].get("modified") else None


def _describe_dataset(request: Request) -> tuple[Graph, Counts, list, str | None]:
    settings, store = request.app.state.settings, request.app.state.store
    modified = data_modified(store)
    counts = store_cache(request.app).get(("void-counts",), modified, lambda: store_counts(store))
    sources = store.select(load_query("sources"))
    dumps = list_dumps(settings.dumps_dir)
    graph = dataset_graph(settings, counts, sources, dumps, _modified_iso(store))
    return graph, counts, dumps, modified


async def dataset(request: Request) -> Response:
    settings = request.app.state.settings
    media_type = choose(request)
    graph, counts, dumps, modified = await run_in_threadpool(_describe_dataset, request)
    headers = {"Cache-Control": cache_control(settings.page_max_age)}
    if modified:
        headers["Last-Modified"] = modified
    if media_type != HTML:
        return rdf_response(graph, media_type, headers)
    language = page_language(request, settings.default_language)
    path = request.url.path
    context = template_context(
        request, language, counts=counts, dumps=dumps, path=path,
        alternates=[{"media_type": f.media_type, "href": f"{path}?format={f.name}", "name": f.name}
                    for f in RDF_FORMATS])
    return request.app.state.templates.TemplateResponse(
        request, "dataset.html", context, headers={**headers, "Vary": "Accept, Accept-Language"})


for _path in ("/.well-known/void", "/dataset"):
    router.add_api_route(_path, dataset, methods=["GET"], include_in_schema=False)
