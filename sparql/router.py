"""The public SPARQL 1.1 Protocol endpoint (`/sparql`): a router, or an ASGI app answered ahead
of the app's router (`SparqlEndpoint`).

Read-only and safe to leave open: every query passes `guard.check_query` first, then the
client's rate (the client told apart behind trusted proxies) and the concurrency cap
(`throttle`); answers are negotiated from the tables below, SELECT answers are capped at
`SparqlLimits.max_rows` (and say so in a header), and every answer carries CORS headers so
browser tools (YASGUI…) can use it. The store given is what runs public queries within the
timeout: `workers.QueryWorkers` over the embedded store (awaited on the event loop; the worker
sends the answer serialised and cut, passed on as it is), or a remote server, whose SELECT
answers are read up to the cap and whose graph answers are streamed on as they arrive. The
answer is cut and serialised the same way whatever runs it (`answers`). Errors are raised as
`HTTPProblem`s; the app's single handler turns them into responses.
"""

from __future__ import annotations

import inspect
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping
from urllib.parse import parse_qs

import pyoxigraph as ox
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from rdflib import BNode, Graph, Namespace, URIRef
from rdflib.namespace import RDF
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from .accept import best_match
from .answers import Answer, PublicQuery, solutions_answer
from .errors import (
    BadQuery,
    BadRequest,
    Forbidden,
    HTTPProblem,
    NotAcceptable,
    PayloadTooLarge,
    StoreUnavailable,
    UpstreamTimeout,
)
from .guard import SparqlLimits, check_query
from .store import RESULTS_FORMATS, QuerySyntaxError, Store, StoreError, StoreTimeout
from .throttle import ClientAddresses, ConcurrencyGate, RateLimiter
from .workers import QueryOverMemory

log = logging.getLogger("affiche.sparql")

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
FORMATS = Namespace("http://www.w3.org/ns/formats/")
ENTAILMENT_SIMPLE = URIRef("http://www.w3.org/ns/entailment/Simple")

TRUNCATED_HEADER = "X-Affiche-Truncated"
ROW_LIMIT_HEADER = "X-Affiche-Row-Limit"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": f"{TRUNCATED_HEADER}, {ROW_LIMIT_HEADER}, Retry-After",
}
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Accept",
    "Access-Control-Max-Age": "86400",
}

# How the app should gzip this endpoint's answers. Level 1 (measured on bench_sparql's answers:
# 3 to 4 times faster than level 6, 600 MB/s, for 6-25 % more bytes) because machine clients
# rather than people on slow links read them, and the server's CPU is what a public endpoint
# runs out of. Compressed on the event loop up to 1 MiB (under 2 ms at that speed): handing
# the compression to a thread, as Starlette does from 128 KiB, costs two more wake-ups.
GZIP_LEVEL = 1
GZIP_INLINE_BYTES = 1 << 20

FORM = "application/x-www-form-urlencoded"
SPARQL_QUERY = "application/sparql-query"
SPARQL_UPDATE = "application/sparql-update"
HTML = "text/html"


class UnsupportedMediaType(HTTPProblem):
    status, title = 415, "Unsupported media type"


class InsufficientMemory(HTTPProblem):
    """A query stopped at its memory limit: like 504 for time, a status of its own, so that it
    is not taken for an outage (502) or a bug (500)."""

    status, title = 507, "Query over its memory limit"


# --- media types are tables ------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """One answer format: its media type, the name the store and rdflib know it by, and its
    W3C IRI (for the service description)."""

    media_type: str
    name: str
    w3c: URIRef


@dataclass(frozen=True)
class FormatTable:
    """The formats one kind of answer can take; aliases map `?format=` names and extra media
    types to a canonical media type. The first format is the default (what `*/*` gets)."""

    formats: tuple[Format, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def media_types(self) -> list[str]:
        return [f.media_type for f in self.formats]

    def by_media_type(self, media_type: str) -> Format | None:
        canonical = self.aliases.get(media_type, media_type)
        return next((f for f in self.formats if f.media_type == canonical), None)

    def accept_offer(self) -> list[str]:
        """What Accept is matched against: canonical types first, then media-type aliases."""
        return self.media_types + [a for a in self.aliases if "/" in a]


SOLUTIONS = FormatTable(
    formats=(
        Format("application/sparql-results+json", "json", FORMATS.SPARQL_Results_JSON),
        Format("application/sparql-results+xml", "xml", FORMATS.SPARQL_Results_XML),
        Format("text/csv", "csv", FORMATS.SPARQL_Results_CSV),
        Format("text/tab-separated-values", "tsv", FORMATS.SPARQL_Results_TSV),
    ),
    aliases={
        "json": "application/sparql-results+json",
        "xml": "application/sparql-results+xml",
        "csv": "text/csv",
        "tsv": "text/tab-separated-values",
        "application/json": "application/sparql-results+json",
        "application/xml": "application/sparql-results+xml",
    },
)

# Store names (`EmbeddedStore.run`'s rdf_format) happen to be rdflib's names too, so the same
# table serves query answers and the service description.
GRAPHS = FormatTable(
    formats=(
        Format("text/turtle", "turtle", FORMATS.Turtle),
        Format("application/n-triples", "nt", FORMATS["N-Triples"]),
        Format("application/ld+json", "json-ld", FORMATS["JSON-LD"]),
        Format("application/rdf+xml", "xml", FORMATS.RDF_XML),
    ),
    aliases={
        "turtle": "text/turtle",
        "ttl": "text/turtle",
        "nt": "application/n-triples",
        "ntriples": "application/n-triples",
        "jsonld": "application/ld+json",
        "json-ld": "application/ld+json",
        "rdfxml": "application/rdf+xml",
        "json": "application/ld+json",
        "xml": "application/rdf+xml",
        "application/x-turtle": "text/turtle",
        "application/json": "application/ld+json",
        "application/xml": "application/rdf+xml",
    },
)

TABLE_FOR_KIND = {"SELECT": SOLUTIONS, "ASK": SOLUTIONS, "CONSTRUCT": GRAPHS, "DESCRIBE": GRAPHS}


# --- the request, whichever of the three protocol forms it came in ----------------------------


@dataclass(frozen=True)
class ProtocolRequest:
    """The SPARQL Protocol parameters of one request."""

    query: str | None
    default_graphs: tuple[str, ...] = ()
    named_graphs: tuple[str, ...] = ()
    format: str | None = None


def _single(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name, [])
    if len(values) > 1:
        raise BadRequest(f"give at most one `{name}` parameter, not {len(values)}")
    return values[0] if values else None


def _graph_iris(params: Mapping[str, list[str]], name: str) -> tuple[str, ...]:
    """The graph IRIs of one parameter, checked here so a bad one is a 400, not a store error."""
    iris = tuple(params.get(name, []))
    for iri in iris:
        try:
            ox.NamedNode(iri)
        except ValueError as exc:
            raise BadRequest(f"`{name}` is not an absolute IRI: {iri!r} ({exc})") from exc
    return iris


def protocol_request(params: Mapping[str, list[str]], url_params: Mapping[str, list[str]],
                     query: str | None = None) -> ProtocolRequest:
    """Collect the parameters; `query` is given when it came as the request body."""
    return ProtocolRequest(
        query=query if query is not None else _single(params, "query"),
        default_graphs=_graph_iris(params, "default-graph-uri"),
        named_graphs=_graph_iris(params, "named-graph-uri"),
        format=_single(params, "format") or _single(url_params, "format"),
    )


def _body_cap(limits: SparqlLimits) -> int:
    """Bytes read from a POST body at most. The exact check is on the query's characters
    (`check_query`); this only stops unbounded reads: a character may take 4 bytes in UTF-8 and
    three times that once percent-encoded, plus room for the graph parameters."""
    return 12 * limits.max_query_length + 65_536


async def _read_body(request: Request, cap: int) -> str:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise PayloadTooLarge(f"the request body is over {cap} bytes")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the request body is not UTF-8: {exc}") from exc


def _url_params(request: Request) -> dict[str, list[str]]:
    return parse_qs(request.url.query, keep_blank_values=True)


async def read_protocol_request(request: Request, limits: SparqlLimits) -> ProtocolRequest:
    """The parameters of a GET (or HEAD), a form POST or a `application/sparql-query` POST."""
    url_params = _url_params(request)
    if request.method in ("GET", "HEAD"):
        return protocol_request(url_params, url_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == SPARQL_UPDATE:
        raise Forbidden("SPARQL Update is not accepted: this endpoint is read-only")
    if content_type == FORM:
        body = await _read_body(request, _body_cap(limits))
        return protocol_request(parse_qs(body, keep_blank_values=True), url_params)
    if content_type == SPARQL_QUERY:
        body = await _read_body(request, _body_cap(limits))
        return protocol_request(url_params, url_params, query=body)
    raise UnsupportedMediaType(
        f"POST a query as {FORM} or {SPARQL_QUERY}, not {content_type or 'an untyped body'}"
    )


# --- negotiation ----------------------------------------------------------------------------


def prefers_html(request: Request, table: FormatTable) -> bool:
    """Whether a browser is asking. HTML is offered last so that `*/*` (curl, requests, httpx)
    gets data; a browser names text/html with a higher q than its `*/*`, so it gets the page."""
    return best_match(request.headers.get("accept"), table.accept_offer() + [HTML]) == HTML


def choose_format(request: Request, table: FormatTable, requested: str | None) -> Format:
    """`?format=` (a short name or a media type) wins over Accept; nothing acceptable is a 406."""
    if requested is not None:
        chosen = table.by_media_type(requested.strip().lower())
    else:
        match = best_match(request.headers.get("accept"), table.accept_offer())
        chosen = table.by_media_type(match) if match else None
    if chosen is None:
        asked = f"format={requested}" if requested is not None else request.headers.get("accept")
        raise NotAcceptable(
            f"this answer is available as {', '.join(table.media_types)}; not as {asked}",
            headers={"Vary": "Accept"},
        )
    return chosen


# --- answering ------------------------------------------------------------------------------


@contextmanager
def store_problems() -> Iterator[None]:
    """The store's failures as the HTTP problems they are: the query's fault (400), too slow
    (504), too big (507), or the store's fault (502)."""
    try:
        yield
    except QuerySyntaxError as exc:
        raise BadQuery(f"the query does not parse: {exc}") from exc
    except StoreTimeout as exc:
        raise UpstreamTimeout(str(exc)) from exc
    except QueryOverMemory as exc:
        raise InsufficientMemory(str(exc)) from exc
    except StoreError as exc:
        raise StoreUnavailable(f"the store could not answer this query: {exc}") from exc


def public_query(params: ProtocolRequest, kind: str, chosen: Format,
                 max_rows: int) -> PublicQuery:
    """What the runners take: the query, the format names the store knows, the dataset."""
    graph_answer = TABLE_FOR_KIND[kind] is GRAPHS
    return PublicQuery(query=params.query or "",
                       results_format="json" if graph_answer else chosen.name,
                       rdf_format=chosen.name if graph_answer else "turtle",
                       max_rows=max_rows, default_graphs=params.default_graphs,
                       named_graphs=params.named_graphs)


def answer_with_run(store: Store, query: PublicQuery) -> Answer:
    """Answer through the `Store.run` interface (blocking: called in a thread): the embedded
    store queried in process (the app without its lifespan, in tests). Its solutions, asked for
    as TSV, are cut and converted like a worker's (`answers.solutions_answer`)."""
    raw = store.run(query.query, results_format="tsv", rdf_format=query.rdf_format,
                    default_graphs=list(query.default_graphs) or None,
                    named_graphs=list(query.named_graphs) or None)
    results = ox.QueryResultsFormat.from_media_type(raw.media_type) \
        if raw.kind != "graph" else None
    if raw.kind == "solutions":
        solutions = ox.parse_query_results(raw.body, format=results)
        return solutions_answer(solutions, query.results_format, query.max_rows)
    if raw.kind == "boolean":
        boolean = ox.parse_query_results(raw.body, format=results)
        fmt = RESULTS_FORMATS[query.results_format]
        return Answer(boolean.serialize(format=fmt), fmt.media_type)
    return Answer(raw.body, raw.media_type)


async def answer_query(store, query: PublicQuery) -> Answer:
    """Run a public query on whatever answers them: worker processes (`answer` is a coroutine:
    awaited on the event loop), a remote server (`answer` blocks: run in a thread), or any
    `Store` (through `run`, in a thread)."""
    with store_problems():
        answer = getattr(store, "answer", None)
        if inspect.iscoroutinefunction(answer):
            return await answer(query)
        if answer is not None:
            return await run_in_threadpool(answer, query)
        return await run_in_threadpool(answer_with_run, store, query)


def streams_graphs(store: Store) -> bool:
    """Whether the store can hand a graph answer on as it comes (a remote server can)."""
    return callable(getattr(store, "open_answer", None))


def open_streamed_answer(store: Store, query: str, chosen: Format, request: ProtocolRequest):
    """Start a CONSTRUCT/DESCRIBE whose answer is streamed (blocking: called in a thread)."""
    with store_problems():
        return store.open_answer(query, rdf_format=chosen.name,
                                 default_graphs=list(request.default_graphs) or None,
                                 named_graphs=list(request.named_graphs) or None)


class CutStreamingResponse(StreamingResponse):
    """A streamed answer that may be cut off (the store failed, or its deadline passed, after
    the first bytes were sent). The status is gone by then, so the connection is broken off
    rather than ended, so that the client cannot take a cut answer for a whole one. That is
    logged as one line, not as the traceback of an error no handler can answer."""

    async def stream_response(self, send) -> None:
        try:
            await super().stream_response(send)
        except StoreError as exc:
            log.warning("sparql: a streamed answer was cut off: %s", exc)
            raise AnswerCutOff(str(exc)) from None


class AnswerCutOff(Exception):
    """A streamed answer broken off after its start; the server drops the connection. Not an
    HTTP problem (its status is sent already): `quiet_cut_answers` keeps it out of the log."""


def quiet_cut_answers(record: logging.LogRecord) -> bool:
    """A log filter for the ASGI server's logger: the server logs an exception that ends a
    started response with its traceback; for a cut answer, the line above says it all."""
    return not (record.exc_info and isinstance(record.exc_info[1], AnswerCutOff))


async def streamed_response(store: Store, query: str, chosen: Format, request: ProtocolRequest,
                            gate: ConcurrencyGate) -> Response:
    """The answer passed on as the store sends it; the query keeps its concurrency slot until
    the last byte is sent (or the client goes away)."""
    slot = gate.acquire()
    try:
        answer = await run_in_threadpool(open_streamed_answer, store, query, chosen, request)
    except BaseException:
        slot.release()
        raise

    def chunks() -> Iterator[bytes]:
        try:
            yield from answer.chunks()
        finally:
            slot.release()

    def finish() -> None:
        answer.close()
        slot.release()

    return CutStreamingResponse(chunks(), media_type=chosen.media_type,
                                headers={"Vary": "Accept"}, background=BackgroundTask(finish))


def answer_response(answer: Answer, max_rows: int) -> Response:
    headers = {"Vary": "Accept"}
    if answer.truncated:
        headers[TRUNCATED_HEADER] = "true"
        headers[ROW_LIMIT_HEADER] = str(max_rows)
    return Response(answer.body, media_type=answer.media_type, headers=headers)


def service_description(endpoint: str) -> Graph:
    """The SPARQL 1.1 Service Description of this endpoint, built from the format tables so
    that it cannot drift from what the endpoint really answers."""
    graph = Graph(bind_namespaces="core")
    graph.bind("sd", SD)
    graph.bind("formats", FORMATS)
    service = BNode()
    graph.add((service, RDF.type, SD.Service))
    graph.add((service, SD.endpoint, URIRef(endpoint)))
    graph.add((service, SD.supportedLanguage, SD.SPARQL11Query))
    graph.add((service, SD.feature, SD.UnionDefaultGraph))
    graph.add((service, SD.defaultEntailmentRegime, ENTAILMENT_SIMPLE))
    for fmt in SOLUTIONS.formats + GRAPHS.formats:
        graph.add((service, SD.resultFormat, fmt.w3c))
    return graph


def description_response(request: Request, endpoint: str, requested: str | None) -> Response:
    chosen = choose_format(request, GRAPHS, requested)
    body = service_description(endpoint).serialize(format=chosen.name, encoding="utf-8")
    return Response(body, media_type=chosen.media_type, headers={"Vary": "Accept"})


# --- the endpoint, mounted as a router or answered ahead of one ------------------------------

ProblemRenderer = Callable[[Request, HTTPProblem], Response]
METHODS = ("GET", "HEAD", "POST", "OPTIONS")


class MethodNotAllowed(HTTPProblem):
    status, title = 405, "Method not allowed"


class SparqlEndpoint:
    """The `/sparql` endpoint: one handler (`respond`), mountable two ways. `router()` is a
    FastAPI router, for any app; `asgi()` is a bare ASGI app that `create_app` answers `/sparql`
    with ahead of its router (`AnsweredFirst`). Matching the request against every route, and
    FastAPI's per-request machinery, were a third of the app's CPU time on a /sparql request
    (measured in process on a 29 KB answer: 0.39 ms, 0.26 ms without them), and that time
    counts some three times over when the server's caches went cold while the query ran in its
    worker (1.1-1.6 ms, 0.85-0.9 ms without them). Every answer and every problem allows any
    origin: the data is public and browser-based SPARQL clients (YASGUI…) must be able to read
    the errors too.

    `endpoint_url` gives the public URL the service description names (behind a proxy it is not
    the URL the request arrived at); `html_page` renders the query editor for browsers, when the
    app has one."""

    def __init__(self, get_store: Callable[[], Store], limits: SparqlLimits,
                 endpoint_url: Callable[[Request], str],
                 html_page: Callable[[Request, str | None], Response] | None = None) -> None:
        self.get_store, self.limits = get_store, limits
        self.endpoint_url, self.html_page = endpoint_url, html_page
        self.rate = RateLimiter(limits.rate_per_minute)
        self.clients = ClientAddresses(limits.trusted_proxies)
        self.gate = ConcurrencyGate(limits.max_concurrent)
        logging.getLogger("uvicorn.error").addFilter(quiet_cut_answers)  # once: a set of filters

    async def respond(self, request: Request) -> Response:
        """The answer to any request for the endpoint; problems are raised, CORS headers on."""
        try:
            response = await self._answer(request)
        except HTTPProblem as exc:
            exc.headers.update(CORS_HEADERS)
            raise
        response.headers.update(CORS_HEADERS)
        return response

    async def _answer(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=PREFLIGHT_HEADERS)
        if request.method not in METHODS:
            raise MethodNotAllowed(f"{request.method} is not a SPARQL Protocol method here",
                                   headers={"Allow": ", ".join(METHODS)})
        params = await read_protocol_request(request, self.limits)
        html_page = self.html_page
        if params.query is None:
            if html_page is not None and params.format is None and prefers_html(request, GRAPHS):
                return html_page(request, None)
            return description_response(request, self.endpoint_url(request), params.format)
        kind = check_query(params.query, self.limits)
        table = TABLE_FOR_KIND[kind]
        if html_page is not None and params.format is None and prefers_html(request, table):
            return html_page(request, params.query)
        chosen = choose_format(request, table, params.format)
        self.rate.admit(self.clients.client(request.client.host if request.client else None,
                                            request.headers.getlist("x-forwarded-for")))
        store = self.get_store()
        if table is GRAPHS and streams_graphs(store):
            return await streamed_response(store, params.query, chosen, params, self.gate)
        with self.gate.slot():
            answer = await answer_query(store, public_query(params, kind, chosen,
                                                            self.limits.max_rows))
        return answer_response(answer, self.limits.max_rows)

    def router(self) -> APIRouter:
        """The endpoint as a FastAPI route at `/sparql`; problems go to the app's handler."""
        router = APIRouter()
        router.add_api_route("/sparql", self.respond, methods=["GET", "POST", "OPTIONS"],
                             include_in_schema=False)
        return router

    def asgi(self, problem_response: ProblemRenderer) -> ASGIApp:
        """The endpoint as a bare ASGI app; `problem_response` renders its problems (the app's
        one handler). Whatever else goes wrong is left to the server's error handling (500)."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive)
            try:
                response = await self.respond(request)
            except HTTPProblem as exc:
                response = problem_response(request, exc)
            await response(scope, receive, send)

        return app


def sparql_router(get_store: Callable[[], Store], limits: SparqlLimits,
                  endpoint_url: Callable[[Request], str],
                  html_page: Callable[[Request, str | None], Response] | None = None) -> APIRouter:
    """The `/sparql` endpoint as a router (see `SparqlEndpoint`)."""
    return SparqlEndpoint(get_store, limits, endpoint_url, html_page).router()


def route_path(scope: Scope) -> str:
    """The path the app routes on: the request's, less the prefix it is mounted under."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class AnsweredFirst:
    """ASGI middleware: requests for `path` go straight to `endpoint` (an ASGI app, wrapped by
    the caller in whatever layers it needs), every other request on to the app. `path/` is the
    same endpoint (clients written for Virtuoso's `/sparql/` keep working, POST bodies included)."""

    def __init__(self, app: ASGIApp, path: str, endpoint: ASGIApp) -> None:
        self.app, self.paths, self.endpoint = app, (path, path + "/"), endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and route_path(scope) in self.paths:
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)
