"""A remote SPARQL 1.1 server as the store: Oxigraph server, Apache Jena Fuseki, Virtuoso, QLever…

Reads go to the server's query endpoint (SPARQL 1.1 Protocol). A harvest replaces one source's
named graph with a Graph Store Protocol PUT, which the server applies atomically; servers without
the Graph Store Protocol get one SPARQL Update request (`DROP SILENT GRAPH` then `INSERT DATA`),
which the SPARQL 1.1 servers above also apply as one transaction. The server must answer queries
without `GRAPH` over the union of its named graphs, as the embedded store does (Oxigraph:
`--union-default-graph`; Fuseki: `tdb2:unionDefaultGraph true`; Virtuoso and QLever do so by
default).

A server that cannot be reached or answers an error is a `StoreError` (502), one that does not
answer in time a `StoreTimeout` (504): never a missing resource.

Public queries (`/sparql`) are read as they arrive: a SELECT answer is parsed solution by
solution and the reading stops at the row cap (`answer`), a graph answer is passed on chunk by
chunk (`open_answer`); neither is held whole, and both keep to the deadline.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import IO, Iterator
from urllib.parse import urlencode

import httpx
import pyoxigraph as ox
from rdflib import Graph
from rdflib.term import Node

from .answers import Answer, PublicQuery, solutions_answer
from .guard import tokens
from .queries import load_query
from .store import (
    RDF_FORMATS,
    RESULTS_FORMATS,
    QueryAnswer,
    QuerySyntaxError,
    StoreError,
    StoreTimeout,
    solution_rows,
    to_ox,
    triples_graph,
)

RESULTS_MEDIA_TYPES = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
}
RDF_MEDIA_TYPES = {name: fmt.media_type for name, fmt in RDF_FORMATS.items()}
N_TRIPLES = "application/n-triples"
FORM = "application/x-www-form-urlencoded"
NO_GSP = {"", "none"}
ERROR_EXCERPT = 500


@dataclass(frozen=True)
class Endpoints:
    """Where a SPARQL 1.1 server answers: queries, updates, and (optionally) the Graph Store
    Protocol. Without `gsp`, graphs are written with SPARQL Update."""

    query: str
    update: str
    gsp: str | None
    token: str | None = None  # sent as `Authorization: Bearer` with writes (QLever)


def endpoints_for(base: str, query_url: str | None = None, update_url: str | None = None,
                  gsp_url: str | None = None, token: str | None = None) -> Endpoints:
    """The endpoints of a server at `base`, laid out as Oxigraph server's (`/query`, `/update`,
    `/store`) unless given; a GSP URL of `none` means "write with SPARQL Update"."""
    base = base.rstrip("/")
    gsp = f"{base}/store" if gsp_url is None else gsp_url
    return Endpoints(query=query_url or f"{base}/query", update=update_url or f"{base}/update",
                     gsp=None if gsp.strip().lower() in NO_GSP else gsp, token=token or None)


def bind_values(query: str, bindings: dict[str, Node] | None) -> str:
    """Bind variables the way pyoxigraph's substitutions do, for a server that has none: a
    VALUES block opening the WHERE clause. The terms are written by pyoxigraph from parsed
    values, so request text never becomes query syntax."""
    if not bindings:
        return query
    names = " ".join(f"?{name}" for name in bindings)
    terms = " ".join(str(to_ox(term)) for term in bindings.values())
    block = f" VALUES ({names}) {{ ({terms}) }} "
    position = _where_brace(query)
    return query[:position + 1] + block + query[position + 1:]


def _where_brace(query: str) -> int:
    """The position of the `{` that opens the WHERE clause (WHERE is optional before it in a
    SELECT or ASK; a CONSTRUCT's template comes first, so the brace after WHERE is taken)."""
    first_brace, after_where = None, False
    for kind, start, end in tokens(query):
        if kind == "word" and query[start:end].upper() == "WHERE":
            after_where = True
        elif kind == "other" and query[start] == "{":
            if after_where:
                return start
            if first_brace is None:
                first_brace = start
    if first_brace is None:
        raise ValueError("the query has no WHERE clause to bind values in")
    return first_brace


@dataclass
class StreamedAnswer:
    """An answer being received from the server, passed on chunk by chunk."""

    media_type: str
    response: httpx.Response
    deadline: float

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives. Past the deadline the answer is broken off (the connection
        to the client is aborted, so that it cannot mistake a cut answer for a whole one)."""
        try:
            for chunk in self.response.iter_bytes():
                if time.monotonic() > self.deadline:
                    raise StoreTimeout("the SPARQL server's answer took longer than the timeout")
                yield chunk
        except httpx.HTTPError as exc:
            raise StoreError(f"the SPARQL server's answer broke off: {exc}") from exc
        finally:
            self.response.close()

    def close(self) -> None:
        self.response.close()


class _Body(io.RawIOBase):
    """A response's body as a file pyoxigraph reads from as it needs, within the deadline."""

    def __init__(self, response: httpx.Response, deadline: float) -> None:
        super().__init__()
        self._chunks = response.iter_bytes()
        self._deadline = deadline
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            while not self._pending:
                if time.monotonic() > self._deadline:
                    raise StoreTimeout("the SPARQL server's answer took longer than the timeout")
                chunk = next(self._chunks, None)
                if chunk is None:
                    return 0
                self._pending = memoryview(chunk)
        except httpx.TimeoutException as exc:
            raise StoreTimeout(f"the SPARQL server's answer stopped coming: {exc}") from exc
        except httpx.HTTPError as exc:
            raise StoreError(f"the SPARQL server's answer broke off: {exc}") from exc
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _media_type(response: httpx.Response | Reply) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class Reply:
    """An answer read whole (what `httpx.Response` offers that the code here uses)."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class RemoteStore:
    """The `Store` interface over a SPARQL 1.1 server, with one HTTP client (thread-safe)."""

    def __init__(self, endpoints: Endpoints, *, timeout_s: float = 60.0,
                 query_timeout_s: float | None = None,
                 client: httpx.Client | None = None) -> None:
        self.endpoints = endpoints
        self.timeout_s = timeout_s
        self.query_timeout_s = query_timeout_s if query_timeout_s is not None else timeout_s
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._owns_client = client is None
        self.generation = 0

    def for_public_queries(self, timeout_s: float) -> RemoteStore:
        """The same server and connections, with `run` (the /sparql path) given up on after
        `timeout_s`. The server should stop the query itself too (its own timeout)."""
        return RemoteStore(self.endpoints, timeout_s=self.timeout_s, query_timeout_s=timeout_s,
                           client=self._client)

    # HTTP

    def _request(self, method: str, url: str, *, timeout_s: float | None = None,
                 whole_within: bool = False, **kwargs) -> httpx.Response | Reply:
        """One request. httpx's timeout bounds each read, not the whole answer, and a server
        streams results as it finds them: with `whole_within`, the whole answer must also have
        arrived within the timeout."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            if whole_within:
                return self._read_within(timeout, method, url, **kwargs)
            return self._client.request(method, url, timeout=timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise StoreTimeout(
                f"the SPARQL server at {url} did not answer within {timeout:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the SPARQL server at {url}: {exc}") from exc

    def _read_within(self, timeout: float, method: str, url: str, **kwargs) -> Reply:
        deadline = time.monotonic() + timeout
        request = self._client.build_request(method, url, timeout=timeout, **kwargs)
        response = self._client.send(request, stream=True)
        try:
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the answer took too long", request=request)
        finally:
            response.close()
        return Reply(response.status_code, response.headers, b"".join(chunks))

    @staticmethod
    def _check(response: httpx.Response | Reply, what: str) -> httpx.Response | Reply:
        if response.is_success:
            return response
        excerpt = response.text[:ERROR_EXCERPT].strip()
        raise StoreError(f"{what}: the SPARQL server answered {response.status_code} {excerpt}")

    def _query(self, query: str, accept: str, *, timeout_s: float | None = None,
               default_graphs: list[str] | None = None, named_graphs: list[str] | None = None,
               whole_within: bool = False) -> httpx.Response | Reply:
        form = [("query", query)]
        form += [("default-graph-uri", g) for g in default_graphs or []]
        form += [("named-graph-uri", g) for g in named_graphs or []]
        response = self._request("POST", self.endpoints.query, timeout_s=timeout_s,
                                 whole_within=whole_within,
                                 content=urlencode(form).encode("ascii"),
                                 headers={"Accept": accept, "Content-Type": FORM})
        if response.status_code == 400:
            raise QuerySyntaxError(response.text[:ERROR_EXCERPT].strip())
        return self._check(response, "the query failed")

    def _write_headers(self, content_type: str) -> dict[str, str]:
        headers = {"Content-Type": content_type}
        if self.endpoints.token:
            headers["Authorization"] = f"Bearer {self.endpoints.token}"
        return headers

    def _update(self, update: str) -> None:
        response = self._request("POST", self.endpoints.update, content=update.encode("utf-8"),
                                 headers=self._write_headers("application/sparql-update"))
        self._check(response, "the update failed")

    # writes

    def replace_graph(self, graph_iri: str, graph: Graph) -> None:
        """Replace one named graph in one request, which the server applies atomically."""
        data = graph.serialize(format="nt", encoding="utf-8")
        try:
            if self.endpoints.gsp is None:
                self._update(f"DROP SILENT GRAPH <{graph_iri}> ;\n"
                             f"INSERT DATA {{ GRAPH <{graph_iri}> {{\n{data.decode()}\n}} }}")
                return
            response = self._request("PUT", self.endpoints.gsp, params={"graph": graph_iri},
                                     content=data, headers=self._write_headers(N_TRIPLES))
            self._check(response, f"cannot write graph {graph_iri}")
        finally:
            self.generation += 1

    def stamp(self, graph_iri: str) -> str | None:
        """None: others may write the server, so what was made from a graph is made again."""
        return None

    def drop_graph(self, graph_iri: str) -> None:
        try:
            if self.endpoints.gsp is None:
                self._update(f"DROP SILENT GRAPH <{graph_iri}>")
                return
            response = self._request("DELETE", self.endpoints.gsp, params={"graph": graph_iri},
                                     headers=self._write_headers(N_TRIPLES))
            if response.status_code != 404:  # already absent: what was asked
                self._check(response, f"cannot drop graph {graph_iri}")
        finally:
            self.generation += 1

    # reads

    def graphs(self) -> list[str]:
        rows = self.select("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
        return sorted(str(row["g"]) for row in rows)

    def select(self, query: str, bindings: dict[str, Node] | None = None) -> list[dict[str, Node]]:
        response = self._query(bind_values(query, bindings), RESULTS_MEDIA_TYPES["json"])
        try:
            solutions = ox.parse_query_results(response.content,
                                               format=ox.QueryResultsFormat.JSON)
            return solution_rows(solutions)
        except (SyntaxError, ValueError, AttributeError) as exc:
            raise StoreError(
                f"the SPARQL server's answer is not SPARQL JSON results: {exc}") from exc

    def construct(self, query: str, bindings: dict[str, Node] | None = None) -> Graph:
        response = self._query(bind_values(query, bindings), N_TRIPLES)
        try:
            return triples_graph(ox.parse(response.content, format=ox.RdfFormat.N_TRIPLES))
        except SyntaxError as exc:
            raise StoreError(f"the SPARQL server's answer is not N-Triples: {exc}") from exc

    def named(self, name: str, bindings: dict[str, Node] | None = None) -> list[dict[str, Node]]:
        return self.select(load_query(name), bindings)

    def run(self, query: str, *, results_format: str = "json", rdf_format: str = "turtle",
            default_graphs: list[str] | None = None,
            named_graphs: list[str] | None = None) -> QueryAnswer:
        """Run a public query on the server within `query_timeout_s`; the answer is passed on
        in the format asked for (the server chooses solutions or a graph by the query's form)."""
        results_type, rdf_type = RESULTS_MEDIA_TYPES[results_format], RDF_MEDIA_TYPES[rdf_format]
        response = self._query(query, f"{results_type}, {rdf_type};q=0.9",
                               timeout_s=self.query_timeout_s, default_graphs=default_graphs,
                               named_graphs=named_graphs, whole_within=True)
        media_type = _media_type(response)
        if media_type == rdf_type:
            return QueryAnswer(response.content, rdf_type, "graph")
        if media_type == results_type:
            return QueryAnswer(response.content, results_type, "solutions")
        raise StoreError(f"the SPARQL server answered {media_type or 'an untyped body'}, "
                         f"not {results_type} or {rdf_type}")

    def _open(self, query: str, accept: str, default_graphs: list[str] | None,
              named_graphs: list[str] | None) -> tuple[httpx.Response, float]:
        """Send a public query and return the response once its headers are in, its body still
        to read, with the deadline its whole answer must arrive by. Errors before the first
        byte of the body are raised here: the query's fault, or the server's."""
        form = [("query", query)]
        form += [("default-graph-uri", g) for g in default_graphs or []]
        form += [("named-graph-uri", g) for g in named_graphs or []]
        url, timeout = self.endpoints.query, self.query_timeout_s
        deadline = time.monotonic() + timeout
        try:
            request = self._client.build_request(
                "POST", url, timeout=timeout, content=urlencode(form).encode("ascii"),
                headers={"Accept": accept, "Content-Type": FORM})
            response = self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise StoreTimeout(
                f"the SPARQL server at {url} did not answer within {timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the SPARQL server at {url}: {exc}") from exc
        if response.is_success:
            return response, deadline
        try:
            body = Reply(response.status_code, response.headers, response.read())
        except httpx.HTTPError as exc:
            raise StoreError(f"the SPARQL server's answer broke off: {exc}") from exc
        finally:
            response.close()
        if body.status_code == 400:
            raise QuerySyntaxError(body.text[:ERROR_EXCERPT].strip())
        self._check(body, "the query failed")  # raises: the server answered an error
        raise StoreError(f"the SPARQL server answered {body.status_code}")

    def open_answer(self, query: str, *, rdf_format: str = "turtle",
                    default_graphs: list[str] | None = None,
                    named_graphs: list[str] | None = None) -> StreamedAnswer:
        """Start a CONSTRUCT or DESCRIBE on the server and hand its answer on as it comes (no
        row cap applies to graphs, so nothing needs the whole answer first). Errors before the
        first byte are raised here; the deadline still holds while the answer streams."""
        media_type = RDF_MEDIA_TYPES[rdf_format]
        response, deadline = self._open(query, media_type, default_graphs, named_graphs)
        answered = _media_type(response)
        if answered == media_type:
            return StreamedAnswer(media_type, response, deadline)
        response.close()
        raise StoreError(f"the SPARQL server answered {answered or 'an untyped body'}, "
                         f"not {media_type}")

    def answer(self, query: PublicQuery) -> Answer:
        """A public query's answer, read as it arrives within `query_timeout_s`. Solutions are
        parsed as they come and the reading stops at the first one past the row cap: the
        connection is closed (the server may then stop too), so a huge answer is neither
        downloaded nor held whole. Booleans and graphs are passed on."""
        results_type, rdf_type = RESULTS_MEDIA_TYPES["json"], RDF_MEDIA_TYPES[query.rdf_format]
        response, deadline = self._open(query.query, f"{results_type}, {rdf_type};q=0.9",
                                        list(query.default_graphs) or None,
                                        list(query.named_graphs) or None)
        body = _Body(response, deadline)
        try:
            answered = _media_type(response)
            if answered == rdf_type:
                return Answer(body.readall(), rdf_type)
            if answered != results_type:
                raise StoreError(f"the SPARQL server answered {answered or 'an untyped body'}, "
                                 f"not {results_type} or {rdf_type}")
            result = ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON)
            if isinstance(result, ox.QueryBoolean):
                fmt = RESULTS_FORMATS[query.results_format]
                return Answer(result.serialize(format=fmt), fmt.media_type)
            return solutions_answer(result, query.results_format, query.max_rows,
                                    one_by_one=True)
        except SyntaxError as exc:
            raise StoreError(
                f"the SPARQL server's answer is not SPARQL JSON results: {exc}") from exc
        finally:
            response.close()

    def _graph_triples(self, graph_iri: str) -> Iterator[ox.Triple]:
        if self.endpoints.gsp is None:
            query = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{graph_iri}> {{ ?s ?p ?o }} }}"
            body = self._query(query, N_TRIPLES).content
        else:
            response = self._request("GET", self.endpoints.gsp, params={"graph": graph_iri},
                                     headers={"Accept": N_TRIPLES})
            body = self._check(response, f"cannot read graph {graph_iri}").content
        return ox.parse(body, format=ox.RdfFormat.N_TRIPLES)

    def dump_nquads(self, out: IO[bytes]) -> None:
        """Every named graph as N-Quads, one graph at a time (the default graph is not used)."""
        for graph_iri in self.graphs():
            graph = ox.NamedNode(graph_iri)
            quads = (ox.Quad(t.subject, t.predicate, t.object, graph)
                     for t in self._graph_triples(graph_iri))
            ox.serialize(quads, out, format=ox.RdfFormat.N_QUADS)

    def dump_graph(self, out: IO[bytes], graph_iri: str, rdf_format: str = "nt") -> None:
        buffer = io.BytesIO()
        ox.serialize(self._graph_triples(graph_iri), buffer, format=RDF_FORMATS[rdf_format])
        out.write(buffer.getvalue())

    def flush(self) -> None:
        """Nothing to do: the server made each write durable before answering it."""

    def close(self) -> None:
        if self._owns_client:
            self._client.close()
