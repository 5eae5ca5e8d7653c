"""The public checker: `GET /check` (a page) and `POST /api/check` (its JSON API).

Anyone pastes a URL or a feed's text, or uploads a file, and sees what Affiche extracts, the JSON-LD
it would publish for each event and every problem, in French or English. Nothing is stored: the
input goes through `harvester.pipeline.check_bytes` and is forgotten. The harvester's safety rules
hold: URLs go through the guarded fetch (no private addresses, capped size and time), local paths
are never read, and an input over `check_max_bytes` is refused with 413.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from rdflib import URIRef
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from harvester.fetch import Fetched, FetchError, FetchPolicy, fetch_url
from harvester.formats import ParseError, formats
from harvester.pipeline import Checked, check_bytes
from harvester.sources import Source
from sparql.errors import BadRequest, HTTPProblem, PayloadTooLarge

from ..feed_options import check_feed_options
from ..i18n import page_language
from ..jsonld_tree import node_tree
from ..templating import template_context

router = APIRouter()
# Room for the form's other fields and the multipart boundaries around the capped input.
_FORM_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class CheckRequest:
    """What the visitor gave: exactly one of url, text or file, and how to read it."""

    url: str | None = None
    text: str | None = None
    upload: bytes | None = None
    filename: str | None = None
    format: str | None = None
    language: str = "fr"
    timezone: str = "Europe/Paris"


@dataclass
class CheckOutcome:
    checked: Checked
    jsonld: dict[str, dict]  # published event IRI -> the JSON-LD its page would embed


@router.get("/check", include_in_schema=False)
async def check_page(request: Request) -> Response:
    return _render(request, None, None, status=200)


@router.post("/check", include_in_schema=False)
async def check_form(request: Request) -> Response:
    try:
        wanted = await read_request(request)
        outcome = await run_in_threadpool(run_check, request, wanted)
    except HTTPProblem as problem:
        return _render(request, None, problem.detail, status=problem.status)
    return _render(request, outcome, None, status=200, language=wanted.language)


@router.post("/api/check")
async def check_api(request: Request) -> Response:
    """Check a URL, a text or an uploaded file; answer the report and the JSON-LD as JSON."""
    wanted = await read_request(request)
    outcome = await run_in_threadpool(run_check, request, wanted)
    body = outcome.checked.report.to_json(wanted.language)
    body["jsonld"] = [outcome.jsonld[iri] for iri in sorted(outcome.jsonld)]
    return JSONResponse(body)


# --- reading the request -------------------------------------------------------------------------


async def read_request(request: Request) -> CheckRequest:
    """The visitor's input from a form (multipart or urlencoded) or a JSON body, size-capped."""
    cap = request.app.state.settings.check_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap + _FORM_OVERHEAD:
        raise PayloadTooLarge(f"{declared} bytes sent; the checker reads at most {cap} bytes")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        fields = await _json_fields(request, cap)
        upload, filename = None, None
    else:
        form = await request.form(max_files=1, max_fields=10, max_part_size=cap + _FORM_OVERHEAD)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        upload, filename = await _upload(form.get("file"), cap)
    text = fields.get("text") or None
    if text is not None and len(text.encode("utf-8")) > cap:
        raise PayloadTooLarge(f"the pasted text is over the limit of {cap} bytes")
    wanted = CheckRequest(
        url=(fields.get("url") or "").strip() or None, text=text, upload=upload, filename=filename,
        format=fields.get("format") or None,
        language=fields.get("language") or page_language(request, "fr"),
        timezone=fields.get("timezone") or "Europe/Paris",
    )
    _validate(wanted)
    return wanted


async def _json_fields(request: Request, cap: int) -> dict[str, str]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap + _FORM_OVERHEAD:
            raise PayloadTooLarge(f"the request is over the limit of {cap} bytes")
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise BadRequest("the body must be a JSON object of strings: url or text, format, "
                         "language, timezone")
    return data


async def _upload(item, cap: int) -> tuple[bytes | None, str | None]:
    if not isinstance(item, UploadFile) or not item.filename:
        return None, None
    content = await item.read(cap + 1)
    if len(content) > cap:
        raise PayloadTooLarge(f"{item.filename}: over the limit of {cap} bytes")
    return content, item.filename


def _validate(wanted: CheckRequest) -> None:
    given = [x for x in (wanted.url, wanted.text, wanted.upload) if x is not None]
    if len(given) != 1:
        raise BadRequest("give exactly one of: a URL (url), a text (text) or a file (file)")
    if wanted.url is not None and not wanted.url.startswith(("http://", "https://")):
        raise BadRequest("the URL must start with http:// or https://")
    check_feed_options(wanted.format, wanted.language, wanted.timezone)


# --- checking ------------------------------------------------------------------------------------


def check_policy(settings) -> FetchPolicy:
    """The harvester's policy (private addresses, time, triples and events caps), with the
    checker's own, lower byte cap."""
    from ..cli import fetch_policy

    return replace(fetch_policy(settings), max_bytes=settings.check_max_bytes)


def fetched_input(wanted: CheckRequest, policy: FetchPolicy) -> Fetched:
    """The bytes to check; a URL goes through the harvester's guarded client."""
    if wanted.url is not None:
        try:
            return fetch_url(wanted.url, policy)
        except FetchError as exc:
            raise BadRequest(str(exc)) from exc
    if wanted.upload is not None:
        return Fetched(content=wanted.upload, location=wanted.filename or "upload")
    return Fetched(content=(wanted.text or "").encode("utf-8"), location="text")


def run_check(request: Request, wanted: CheckRequest) -> CheckOutcome:
    settings = request.app.state.settings
    policy = check_policy(settings)
    fetched = fetched_input(wanted, policy)
    source = Source(id="check", name="check", url=wanted.url, format=wanted.format,
                    language=wanted.language, timezone=wanted.timezone)
    try:
        checked = check_bytes(fetched, source, settings.base_url, wanted.format, policy=policy)
    except ParseError as exc:
        raise BadRequest(str(exc)) from exc
    jsonld = {}
    for event in checked.report.events:
        if event.status == "published":
            iri = URIRef(event.iri)
            jsonld[event.iri] = {"@context": "https://schema.org",
                                 **node_tree(checked.published, iri, wanted.language, 0,
                                             frozenset({iri}))}
    return CheckOutcome(checked=checked, jsonld=jsonld)


# --- the page ------------------------------------------------------------------------------------


def _render(request: Request, outcome: CheckOutcome | None, error: str | None, status: int,
            language: str | None = None) -> Response:
    settings = request.app.state.settings
    language = language or page_language(request, settings.default_language)
    report = outcome.checked.report.to_json(language) if outcome else None
    jsonld = ({iri: json.dumps(tree, ensure_ascii=False, indent=1)
               for iri, tree in outcome.jsonld.items()} if outcome else {})
    context = template_context(request, language, report=report, jsonld=jsonld, error=error,
                               formats=sorted(formats()), max_bytes=settings.check_max_bytes)
    return request.app.state.templates.TemplateResponse(
        request, "check.html", context, status_code=status,
        headers={"Vary": "Accept-Language", "Cache-Control": "no-store"})
