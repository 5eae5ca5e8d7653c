"""`/dumps/`: the bulk files, listed with size, triples, date, SHA-256 and licences (HTML, JSON,
`SHA256SUMS`, or DCAT distributions in RDF), and served from fixed URLs with HEAD, Range and ETag
so that big downloads can resume."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF, VOID, XSD
from starlette.concurrency import run_in_threadpool

from ontology import AFFICHE
from sparql.accept import best_match
from sparql.errors import NotFound

from ..dumps import DumpFile, dump_metadata, list_dumps
from ..i18n import page_language
from ..negotiation import BY_MEDIA_TYPE, rdf_response
from ..templating import template_context

router = APIRouter()

SPDX = Namespace("http://spdx.org/rdf/terms#")
IANA = "https://www.iana.org/assignments/media-types/"
LISTING_TYPES = ["text/html", "application/json", *BY_MEDIA_TYPE]
STABLE = "public, max-age=300"
IMMUTABLE = "public, max-age=31536000, immutable"
FEED_HEADER = "X-Affiche-Feed-Timestamp"


def _feed_headers(metadata: dict) -> dict[str, str]:
    """The feed position the dumps include: replay the feed from strictly after it."""
    feed = metadata.get("feed") or {}
    return {FEED_HEADER: feed["timestamp"]} if feed.get("timestamp") else {}


def dcat_description(base_url: str, files: list[DumpFile], metadata: dict) -> Graph:
    """The dumps as DCAT distributions of one dataset, with sizes, checksums and licences."""
    graph = Graph()
    graph.bind("dcat", DCAT)
    graph.bind("dct", DCTERMS)
    graph.bind("spdx", SPDX)
    graph.bind("void", VOID)
    dataset = URIRef(f"{base_url}/dumps/#dataset")
    graph.add((dataset, RDF.type, DCAT.Dataset))
    graph.add((dataset, RDF.type, VOID.Dataset))
    graph.add((dataset, DCTERMS.title, Literal("Affiche", lang="fr")))
    if metadata.get("generated"):
        graph.add((dataset, DCTERMS.modified, Literal(metadata["generated"], datatype=XSD.dateTime)))
    feed = metadata.get("feed") or {}
    if feed.get("timestamp"):
        graph.add((dataset, AFFICHE.feedTimestamp, Literal(feed["timestamp"], datatype=XSD.dateTime)))
    for source in metadata.get("sources", []):
        node = URIRef(source["graph"])
        graph.add((dataset, DCTERMS.source, node))
        if source.get("title"):
            graph.add((node, DCTERMS.title, Literal(source["title"])))
        if source.get("license"):
            graph.add((node, DCTERMS.license, URIRef(source["license"])))
            graph.add((dataset, DCTERMS.license, URIRef(source["license"])))
    for dump in files:
        graph.add((dataset, DCAT.distribution, _distribution(graph, base_url, dump)))
    stream = URIRef(f"{base_url}/feed")
    graph.add((dataset, DCAT.distribution, stream))
    graph.add((stream, RDF.type, DCAT.Distribution))
    graph.add((stream, DCAT.accessURL, stream))
    graph.add((stream, DCTERMS.conformsTo, URIRef("https://w3id.org/ldes/specification")))
    graph.add((stream, DCAT.mediaType, URIRef(IANA + "application/trig")))
    return graph


def _distribution(graph: Graph, base_url: str, dump: DumpFile) -> URIRef:
    node = URIRef(f"{base_url}/dumps/{dump.name}")
    graph.add((node, RDF.type, DCAT.Distribution))
    graph.add((node, DCTERMS.title, Literal(dump.name)))
    graph.add((node, DCAT.downloadURL, node))
    graph.add((node, DCAT.mediaType, URIRef(IANA + dump.media_type)))
    graph.add((node, DCAT.compressFormat, URIRef(IANA + "application/gzip")))
    graph.add((node, DCAT.byteSize, Literal(dump.size, datatype=XSD.nonNegativeInteger)))
    graph.add((node, DCTERMS.modified, Literal(dump.modified, datatype=XSD.dateTime)))
    if dump.triples is not None:
        graph.add((node, VOID.triples, Literal(dump.triples, datatype=XSD.integer)))
    for license_iri in dump.licenses:
        graph.add((node, DCTERMS.license, URIRef(license_iri)))
    checksum = BNode()
    graph.add((node, SPDX.checksum, checksum))
    graph.add((checksum, RDF.type, SPDX.Checksum))
    graph.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
    graph.add((checksum, SPDX.checksumValue, Literal(dump.sha256, datatype=XSD.hexBinary)))
    return node


@router.get("/dumps/", include_in_schema=False)
async def dump_index(request: Request) -> Response:
    settings = request.app.state.settings
    files = await run_in_threadpool(list_dumps, settings.dumps_dir)
    metadata = await run_in_threadpool(dump_metadata, settings.dumps_dir)
    headers = {"Vary": "Accept", **_feed_headers(metadata)}
    wanted = best_match(request.headers.get("accept"), LISTING_TYPES)
    if request.query_params.get("format") == "json":
        wanted = "application/json"
    if wanted == "application/json":
        return JSONResponse([vars(f) for f in files], headers=headers)
    if wanted in BY_MEDIA_TYPE:
        return rdf_response(dcat_description(settings.base_url, files, metadata), wanted, headers)
    language = page_language(request, settings.default_language)
    return request.app.state.templates.TemplateResponse(
        request, "dumps.html", template_context(request, language, files=files, metadata=metadata),
        headers={**headers, "Vary": "Accept, Accept-Language"})


@router.get("/dumps/SHA256SUMS", include_in_schema=False)
async def checksums(request: Request) -> Response:
    files = await run_in_threadpool(list_dumps, request.app.state.settings.dumps_dir)
    return PlainTextResponse("".join(f"{f.sha256}  {f.name}\n" for f in files))


@router.api_route("/dumps/{name}", methods=["GET", "HEAD"], include_in_schema=False)
async def dump_file(request: Request, name: str) -> Response:
    settings = request.app.state.settings
    # Only names from the listing are served: no path from the request reaches the file system.
    files = {f.name: f for f in await run_in_threadpool(list_dumps, settings.dumps_dir)}
    if name not in files:
        raise NotFound(f"no dump named {name!r}")
    dump = files[name]
    etag = f'"{dump.sha256}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE if dump.snapshot else STABLE,
               "X-Content-Media-Type": dump.media_type}
    if not dump.snapshot:
        headers.update(_feed_headers(await run_in_threadpool(dump_metadata, settings.dumps_dir)))
    if etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    # FileResponse answers HEAD without a body and honours Range and If-Range (against our ETag).
    return FileResponse(settings.dumps_dir / dump.name, media_type="application/gzip",
                        headers=headers)
