"""JSON-LD files (`.jsonld`, `.json`) and the JSON-LD reading shared with HTML pages.

Organisers write the schema.org context every way there is (`"https://schema.org"`,
`"http://schema.org/"`, `"schema.org"`, the docs URL, a list, a `@vocab` object). Every one of
them is replaced by the pinned context before parsing, so nothing is ever fetched; any other remote
context is refused rather than fetched.

Documents are read by pyoxigraph's JSON-LD parser (about ten times faster than rdflib's, issue #9);
those it refuses or would read differently from rdflib are read by rdflib, so that every feed reads
exactly as it did (`JsonLdReader`).
"""

from __future__ import annotations

import json
import math
import re
from functools import cache, lru_cache
from typing import Any

import pyoxigraph
from rdflib import Graph

from ontology import schema_context

from . import FeedFormat, FeedTriples, ParseContext, Parsed, ParseError, ParseProblem, head_text
from ._events import events_in
from ._oxigraph import DiffersFromRdflib, Terms, Triple, add_triples, renamed_blank_nodes, to_triples

SCHEMA_CONTEXT_NAMES = {
    "schema.org",
    "schema.org/docs/jsonldcontext.json",
    "schema.org/docs/jsonldcontext.jsonld",
}


class RemoteContextError(ValueError):
    """A JSON-LD document names a context Affiche will not fetch."""


def is_schema_context(value: str) -> bool:
    name = value.strip().lower()
    for prefix in ("https://", "http://", "//"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    name = name.removeprefix("www.").rstrip("/")
    return name in SCHEMA_CONTEXT_NAMES


def pin_contexts(node: Any) -> Any:
    """Return a copy of a JSON-LD document with schema.org contexts replaced by the pinned one."""
    if isinstance(node, list):
        return [pin_contexts(item) for item in node]
    if not isinstance(node, dict):
        return node
    pinned = {}
    for key, value in node.items():
        pinned[key] = _pin_context_value(value) if key == "@context" else pin_contexts(value)
    return pinned


def _pin_context_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_pin_context_value(item) for item in value]
    if isinstance(value, str):
        if is_schema_context(value):
            return schema_context()
        raise RemoteContextError(
            f"the @context {value!r} would have to be fetched from the network; "
            'use "https://schema.org" or an inline context'
        )
    if isinstance(value, dict):
        if "@import" in value:
            raise RemoteContextError("@import in a @context would fetch from the network")
        # a context wrapped in a context ({"@context": {"@context": URL}}): rdflib fetches it
        return {key: _pin_context_value(item) if key == "@context" else pin_contexts(item)
                for key, item in value.items()}
    return value


def _with_default_context(document: Any) -> Any:
    """Documents that forget @context altogether are read as schema.org, as search engines do."""
    if isinstance(document, dict) and "@context" not in document:
        return {"@context": schema_context(), **document}
    if isinstance(document, list):
        return [_with_default_context(item) for item in document]
    return document


class JsonLdReader:
    """Reads a feed's JSON-LD documents (a file's items, a page's blocks) into one graph.

    pyoxigraph reads each document; one that it refuses, or that it might read differently from
    rdflib (see `_Preparer` and `_oxigraph`), is read by rdflib's parser instead, as it always was.
    Terms are converted once per feed; blank nodes are new for each document."""

    def __init__(self, graph: FeedTriples | Graph, base: str | None) -> None:
        self.graph = graph
        self.base = base
        self.terms = Terms(base, resolve_relative=True)
        self.read_by_rdflib = 0  # documents pyoxigraph left to rdflib (measured by bench_harvest)

    def read(self, document: Any) -> list[Triple]:
        """Add one decoded document to the graph and return its triples. Raises
        RemoteContextError for a context that would be fetched, ValueError (or rdflib's own
        exception) for a document neither parser can read; then nothing of it is added."""
        preparer = _Preparer()
        preparer.prepare(document)
        triples = None
        refused: SyntaxError | None = None
        data = preparer.pyoxigraph_text()
        if preparer.differs is None and not _EXPLICIT_STRING.search(data):
            try:
                quads = pyoxigraph.parse(data, format=pyoxigraph.RdfFormat.JSON_LD,
                                         lenient=True)
                triples = to_triples(quads, self.terms)
            except SyntaxError as exc:
                refused = exc
            except (DiffersFromRdflib, ValueError):
                pass
        if triples is None:
            self.read_by_rdflib += 1
            triples = self._read_with_rdflib(preparer.rdflib_text(), refused)
        add_triples(self.graph, triples)
        return triples

    def _read_with_rdflib(self, data: str, refused: SyntaxError | None) -> list[Triple]:
        own = Graph()
        try:
            own.parse(data=data, format="json-ld", base=self.base)
        except RecursionError:
            raise
        except Exception as exc:
            if refused is not None:  # pyoxigraph says what is wrong in JSON-LD's own terms
                raise ValueError(_without_position(str(refused))) from exc
            raise
        return renamed_blank_nodes(own)


# A string typed xsd:string explicitly: rdflib keeps the datatype, pyoxigraph (rightly, in RDF 1.1)
# does not say it; such rare documents go to rdflib so that the output stays what it was.
_EXPLICIT_STRING = re.compile(r'[#:]string"')


def _without_position(message: str) -> str:
    """pyoxigraph's positions point into the document as re-serialised with the pinned context,
    not into what the organiser wrote."""
    return re.sub(r"^Parser error at line \d+ column \d+: ", "", message)


_HUGE = 10**21
_SCHEME = re.compile(r"^(_|[A-Za-z][A-Za-z0-9+.-]*)$")


@cache
def _coerced_terms() -> frozenset[str]:
    """Terms of the pinned schema.org context that give their values a type (`@id`, `Date`)."""
    return frozenset(term for term, definition in schema_context().items()
                     if isinstance(definition, dict) and "@type" in definition)


class _Preparer:
    """Pins a document's contexts (as `pin_contexts`) and notes, in the same walk, what
    pyoxigraph would read differently from rdflib (`differs`): both follow JSON-LD where rdflib
    does; these are rdflib's own ways, kept so that every feed still reads as it did.

    - a whole number written as a decimal (`12.0`): rdflib keeps xsd:double "12.0", JSON-LD says
      xsd:integer "12" (JSON has one kind of number); from 10^21 on, JSON-LD says xsd:double,
      rdflib xsd:integer;
    - a number or boolean under a term that types its values (`"url": 5`, `"startDate": 2027.5`):
      rdflib gives it the term's type as written (even `schema:@id`), JSON-LD a number's type;
    - a number with an explicit `@type`;
    - `@base` in a context (relative IRIs are then resolved by each parser its own way);
    - a property or type such as `20:00` (see `_vocabulary_relative`);
    - an array in an array (a list of lists in JSON-LD 1.1, a string of Python in rdflib).

    Every pinned context of the document is one dict (`pinned`), filled after the walk: for
    pyoxigraph with only the terms the document uses (`pyoxigraph_text`: processing the whole
    context costs more than reading a small event), for rdflib with all of it (`rdflib_text`)."""

    def __init__(self) -> None:
        self.differs: str | None = None
        self.typed_terms = _coerced_terms()
        self.used: set[str] = set()  # every key and string: the terms a document may use
        self.pinned: dict = {}
        self.prepared: Any = None

    def prepare(self, document: Any) -> None:
        self.prepared = self.document(_with_default_context(document))

    def pyoxigraph_text(self) -> str:
        self.pinned.clear()
        self.pinned.update(_context_for(frozenset(self.used.intersection(schema_context()))))
        return json.dumps(self.prepared)

    def rdflib_text(self) -> str:
        self.pinned.clear()
        self.pinned.update(schema_context())
        return json.dumps(self.prepared)

    def document(self, node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            out = {}
            for name, value in node.items():
                self._use(name)
                if name == "@context":
                    out[name] = self.context(value)
                    continue
                if ":" in name:
                    self._vocabulary_relative(name)
                elif name in ("@type", "type"):  # "type": the pinned context's alias
                    for item in value if isinstance(value, list) else [value]:
                        if isinstance(item, str) and ":" in item:
                            self._vocabulary_relative(item)
                # a list's or a set's items are values of the property that holds it
                out[name] = self.document(value, key if name in ("@list", "@set") else name)
            if "@type" in node and isinstance(node.get("@value"), (int, float)):
                self.differs = "a number with an explicit @type"
            return out
        if isinstance(node, list):
            if any(isinstance(item, list) for item in node):
                self.differs = "an array in an array"
            return [self.document(item, key) for item in node]
        if isinstance(node, str):
            self._use(node)
        elif isinstance(node, float) and (node.is_integer() or not math.isfinite(node)):
            self.differs = "a whole number written as a decimal"
        elif isinstance(node, int) and abs(node) >= _HUGE:
            self.differs = "a whole number of 22 digits or more"
        if isinstance(node, (int, float)) and key in self.typed_terms:
            self.differs = f"a number or boolean as the value of {key!r}"
        return node

    def _vocabulary_relative(self, text: str) -> None:
        """A property or type with a colon after something that is no IRI scheme (`20:00`):
        JSON-LD appends it to @vocab, rdflib resolves it against the base."""
        if not _SCHEME.match(text.partition(":")[0]):
            self.differs = f"{text[:40]!r} is neither a compact nor an absolute IRI"

    def _use(self, text: str) -> None:
        self.used.add(text)
        if ":" in text:  # a compact IRI uses its prefix
            self.used.add(text.partition(":")[0])

    def context(self, value: Any) -> Any:
        """As `_pin_context_value`, schema.org's context being the shared `pinned` dict."""
        if isinstance(value, list):
            return [self.context(item) for item in value]
        if isinstance(value, str):
            if is_schema_context(value):
                return self.pinned
            return _pin_context_value(value)  # raises RemoteContextError
        if isinstance(value, dict):
            if "@import" in value:
                raise RemoteContextError("@import in a @context would fetch from the network")
            self._note_definitions(value)
            return {term: self.context(item) if term == "@context" else self._definition(item)
                    for term, item in value.items()}
        return value

    def _definition(self, node: Any) -> Any:
        """A term definition: its strings may name schema.org terms; a scoped context is pinned."""
        if isinstance(node, dict):
            out = {}
            for name, value in node.items():
                self._use(name)
                out[name] = self.context(value) if name == "@context" else self._definition(value)
            return out
        if isinstance(node, list):
            return [self._definition(item) for item in node]
        if isinstance(node, str):
            self._use(node)
        return node

    def _note_definitions(self, item: dict) -> None:
        if "@base" in item:
            self.differs = "@base in a context"
        typed = {term for term, definition in item.items()
                 if isinstance(definition, dict) and "@type" in definition}
        if typed:
            self.typed_terms = self.typed_terms | typed


@lru_cache(maxsize=256)
def _context_for(terms: frozenset[str]) -> dict:
    """The pinned context with only the given terms (and those their definitions use): a term
    a document never names changes nothing in what it says."""
    full = schema_context()
    kept = {term: definition for term, definition in full.items()
            if term.startswith("@") or term in terms}
    for definition in list(kept.values()):
        if isinstance(definition, dict):
            for reference in (definition.get("@id"), definition.get("@type")):
                prefix = reference.partition(":")[0] if isinstance(reference, str) else None
                if prefix in full:
                    kept[prefix] = full[prefix]
    return kept


def decode_json(content: bytes) -> Any:
    text = content.decode("utf-8-sig", errors="strict")
    return json.loads(text)


def parse(content: bytes, context: ParseContext) -> Parsed:
    try:
        document = decode_json(content)
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 text (byte {exc.start}): JSON-LD must be UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise ParseError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    except RecursionError as exc:
        raise ParseError("the JSON is nested too deeply to be an event listing") from exc
    parsed = Parsed()
    reader = JsonLdReader(parsed.triples, context.base_url)
    items = document if isinstance(document, list) else [document]
    for index, item in enumerate(items, 1):
        where = f"item {index}" if len(items) > 1 else "document"
        try:
            triples = reader.read(item)
        except RemoteContextError as exc:
            parsed.problems.append(ParseProblem(where=where, message=str(exc), field="@context"))
            continue
        except RecursionError:
            parsed.problems.append(ParseProblem(where=where, message="the JSON is nested too deeply"))
            continue
        except Exception as exc:  # rdflib raises many types for malformed JSON-LD
            parsed.problems.append(ParseProblem(where=where, message=f"not valid JSON-LD: {exc}"))
            continue
        for node in events_in(triples):
            parsed.origins.setdefault(node, context.base_url or "document")
    return parsed


def sniff(content: bytes) -> bool:
    head = head_text(content)
    return head.startswith(("{", "[")) and ("@context" in head or "@type" in head)


FORMAT = FeedFormat(
    name="jsonld",
    label="JSON-LD",
    media_types=("application/ld+json", "application/json"),
    extensions=(".jsonld", ".json"),
    sniff=sniff,
    parse=parse,
)
