"""The organiser API under `/api/`: sources, pushes, harvest jobs and withdrawal, with tokens.

Every route needs `Authorization: Bearer {token}` (`affiche tokens issue`). An organiser's token
acts on that organiser's sources only: another organiser's source answers 404, exactly as one that
does not exist, so a token never learns what others registered. Operator tokens act on every
registered source and manage organisers. Refusals (a bad token, a schedule too frequent, a private
address, an oversized push) change nothing. Sources declared in the operator's TOML file are seen
here too (read, usage, withdrawal, confirmation) by the operator and by the organiser their
`organiser` key names. Errors are `application/problem+json` (`publisher.problems.Problem`), and
the OpenAPI document says so for every status a route can answer.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from harvester import identity
from harvester.fetch import FetchError, check_address
from harvester.sources import SOURCE_ID
from sparql.errors import (
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unprocessable,
)

from harvester.pipeline import load_report

from ..feed_options import check_feed_options
from ..accounts import AccountError, Accounts, Principal, RegisteredSource, declared_source, now_iso
from ..jobs import Job, JobRunner, Scheduler
from ..problems import problem_responses
from ..withdrawal import drop_event, drop_source, event_in_source

# Every route needs a token (401) and may get a malformed request (400).
router = APIRouter(prefix="/api", tags=["organisers"], responses=problem_responses(400, 401))
bearer = HTTPBearer(auto_error=False, description="A token from `affiche tokens issue`.")
_FORM_OVERHEAD = 64 * 1024
_RUNNER_LOCK = threading.Lock()

LICENSES = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "etalab-2.0": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
    "ODbL-1.0": "https://opendatacommons.org/licenses/odbl/1-0/",
}
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


# --- models -----------------------------------------------------------------------------------


class Me(BaseModel):
    role: str = Field(description="`operator` or `organiser`")
    organiser: str | None = Field(None, description="the organiser the token acts for")


class OrganiserIn(BaseModel):
    id: str = Field(pattern=SOURCE_ID.pattern, description="lower-case letters, digits, dashes")
    name: str = Field(min_length=1, max_length=200)


class OrganiserOut(BaseModel):
    id: str
    name: str
    created_at: str


class SourceIn(BaseModel):
    id: str = Field(pattern=SOURCE_ID.pattern, description="lower-case letters, digits, dashes; "
                    "it becomes part of the URLs (`/source/{id}`, `/graph/{id}`)")
    name: str = Field(min_length=1, max_length=200)
    url: str | None = Field(None, description="the feed's http(s) URL; none for a source fed "
                            "only by pushes (upload, JSON-LD)")
    format: str | None = Field(None, description="feed format; detected when absent")
    language: str = Field("fr", description="language of untagged text")
    timezone: str = Field("Europe/Paris", description="IANA zone for times without offset")
    license: str | None = Field(None, description="a licence URL, or one of: " + ", ".join(LICENSES))
    schedule: str | None = Field(None, description="harvest interval as an ISO 8601 duration "
                                 "(`PT6H`, `P1D`); none: harvested only when asked")
    organiser: str | None = Field(None, description="operators only: the organiser it belongs to")


class SourceOut(BaseModel):
    id: str
    organiser: str | None = Field(description="the organiser it belongs to (none: a declared "
                                  "source only the operator acts on)")
    name: str
    url: str | None
    format: str | None
    language: str
    timezone: str
    license: str | None
    schedule_minutes: int | None
    created_at: str
    withdrawn_at: str | None
    declared: bool = Field(description="declared in the operator's TOML file (`AFFICHE_CONFIG`): "
                           "read, withdrawn and confirmed here, changed only in that file")
    page: str = Field(description="the public page with the last harvest's report")


class JobOut(BaseModel):
    id: str
    url: str
    source: str
    trigger: str
    state: str = Field(description="queued, running, done, failed or interrupted")
    progress: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None
    held_back: bool = Field(description="a guard held the harvest back (the feed had no event, or "
                            "lost more than `AFFICHE_HARVEST_MAX_LOSS`): the last good data stays "
                            "published until the organiser confirms (`confirm`)")
    confirm: str | None = Field(description="when held back: POST here to publish the feed as it "
                                "is now")
    report: dict | None = Field(description="when finished: the same report as `affiche check "
                                "--json` (summary, score, events and their problems)")


class UsageDay(BaseModel):
    day: str
    page_human: int = Field(description="event pages viewed by people")
    page_crawler: int = Field(description="event pages fetched by crawlers (search engines…)")
    jsonld: int = Field(description="events fetched as JSON-LD")
    rdf: int = Field(description="events fetched as Turtle, N-Triples or RDF/XML")
    dump: int = Field(description="downloads of the source's dump")
    sparql: int = Field(description="`/sparql` answers that named at least one of its events "
                        "(estimated from a sample: `AFFICHE_USAGE_SPARQL_SAMPLE`)")


class UsageTotals(BaseModel):
    page_human: int
    page_crawler: int
    jsonld: int
    rdf: int
    dump: int
    sparql: int


class UsageMonth(UsageTotals):
    month: str = Field(description="YYYY-MM")


class Usage(BaseModel):
    source: str
    days: list[UsageDay] = Field(description="the last 90 days with any use")
    totals: dict[str, int] = Field(description="the sums over `days`")
    last_30_days: UsageTotals = Field(description="the 30 days up to today (UTC)")
    by_month: list[UsageMonth] = Field(description="the last 12 months with any use, newest first")


class Withdrawn(BaseModel):
    withdrawn: str = Field(description="the IRI taken out of the published data")
    removals: int = Field(description="tombstones added to the change feed")


# --- helpers ----------------------------------------------------------------------------------


def accounts(request: Request) -> Accounts:
    return Accounts(request.app.state.settings.data_dir)


def principal(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> Principal:
    challenge = {"WWW-Authenticate": 'Bearer realm="affiche"'}
    if credentials is None:
        raise Unauthorized("this API needs a token: send `Authorization: Bearer TOKEN`", challenge)
    found = accounts(request).authenticate(credentials.credentials)
    if found is None:
        raise Unauthorized("the token is invalid or revoked",
                           {"WWW-Authenticate": 'Bearer realm="affiche", error="invalid_token"'})
    return found


Caller = Annotated[Principal, Depends(principal)]


def operator_only(who: Principal) -> None:
    if not who.is_operator:
        raise Forbidden("this needs an operator token")


def owned_source(request: Request, who: Principal, source_id: str) -> RegisteredSource:
    """The source (registered, or declared in the TOML file) if the caller may act on it; else
    404, whether it exists or not."""
    registry = accounts(request)
    source = registry.source(source_id) or declared_source(
        request.app.state.settings.config, source_id, registry.withdrawn_at(source_id))
    if source is None or not (who.is_operator or source.organiser == who.organiser):
        raise NotFound(f"you have no source {source_id!r}")
    return source


def registered_only(source: RegisteredSource) -> None:
    if source.declared:
        raise Conflict(f"source {source.id!r} is declared in the operator's file: its feed is "
                       "harvested from there, not pushed")


def job_runner(request: Request) -> JobRunner:
    """The app's runner, made on first use (it needs the store the lifespan opened)."""
    from ..cli import fetch_policy  # the cli owns the settings → fetch policy mapping

    state = request.app.state
    with _RUNNER_LOCK:
        if getattr(state, "jobs", None) is None:
            settings = state.settings
            state.jobs = JobRunner(settings, state.store, fetch_policy(settings),
                                   settings.jobs_max_concurrent)
    return state.jobs


def start_scheduler(app) -> Scheduler | None:
    """`affiche serve`: look for due harvests in the background (unless the setting says 0)."""
    settings = app.state.settings
    if settings.scheduler_poll_s <= 0:
        return None
    from ..cli import fetch_policy

    app.state.jobs = JobRunner(settings, app.state.store, fetch_policy(settings),
                               settings.jobs_max_concurrent)
    return Scheduler(app.state.jobs, settings.scheduler_poll_s).start()


def stop_jobs(app) -> None:
    scheduler = getattr(app.state, "scheduler", None)
    if scheduler is not None:
        scheduler.stop()
    runner = getattr(app.state, "jobs", None)
    if runner is not None:
        runner.close()
    app.state.scheduler = app.state.jobs = None


def source_out(request: Request, source: RegisteredSource) -> SourceOut:
    base = request.app.state.settings.base_url
    return SourceOut(**{k: getattr(source, k) for k in SourceOut.model_fields if k != "page"},
                     page=f"{base}/source/{source.id}")


def job_out(request: Request, job: Job) -> JobOut:
    base = request.app.state.settings.base_url
    data = job.to_json()
    confirm = f"{base}/api/sources/{job.source}/confirm" if data["held_back"] else None
    return JobOut(url=f"{base}/api/jobs/{job.id}", confirm=confirm, **data)


def accepted(request: Request, job: Job) -> JSONResponse:
    body = job_out(request, job)
    return JSONResponse(body.model_dump(), status_code=202, headers={"Location": body.url})


def schedule_minutes(schedule: str | None, minimum: int) -> int | None:
    if schedule is None:
        return None
    match = _DURATION.match(schedule)
    if not match or schedule in ("P", "PT") or schedule.endswith("T"):
        raise BadRequest(f"schedule {schedule!r}: give an ISO 8601 duration such as PT6H or P1D")
    days, hours, minutes = (int(x or 0) for x in match.groups())
    total = days * 1440 + hours * 60 + minutes
    if total < minimum:
        raise Unprocessable(f"schedule {schedule}: every {total} minutes is more often than "
                            f"allowed here (at most every {minimum} minutes)")
    return total


def checked_source(request: Request, who: Principal, wanted: SourceIn) -> RegisteredSource:
    """Everything about a new source that can be refused, refused before anything is stored."""
    settings = request.app.state.settings
    if wanted.organiser is not None and not who.is_operator:
        raise Forbidden("only operators register sources for another organiser")
    organiser = wanted.organiser if who.is_operator else who.organiser
    if organiser is None:
        raise BadRequest("an operator registering a source names its `organiser`")
    if not accounts(request).organiser_exists(organiser):
        raise Unprocessable(f"no organiser {organiser!r}")
    check_feed_options(wanted.format, wanted.language, wanted.timezone)
    license = LICENSES.get(wanted.license or "", wanted.license)
    if license is not None and not license.startswith(("http://", "https://")):
        raise BadRequest(f"license {wanted.license!r}: a URL, or one of {', '.join(LICENSES)}")
    minutes = schedule_minutes(wanted.schedule, settings.schedule_min_minutes)
    if wanted.url is not None:
        from ..cli import fetch_policy

        try:
            check_address(wanted.url, fetch_policy(settings))
        except FetchError as exc:
            raise Unprocessable(str(exc)) from exc
    if minutes is not None and wanted.url is None:
        raise Unprocessable("a schedule needs a `url` to harvest; pushed sources are harvested "
                            "on each push")
    return RegisteredSource(id=wanted.id, organiser=organiser, name=wanted.name, url=wanted.url,
                            upload=None, format=wanted.format, language=wanted.language,
                            timezone=wanted.timezone, license=license, schedule_minutes=minutes,
                            created_at=now_iso(), withdrawn_at=None)


def id_taken_elsewhere(request: Request, source_id: str) -> bool:
    """A TOML source (declared, or already harvested) has the id."""
    settings = request.app.state.settings
    graph = identity.graph_iri(settings.base_url, source_id)
    if graph in request.app.state.store.graphs():
        return True
    if settings.config is not None and Path(settings.config).exists():
        from harvester.sources import SourceConfigError, load_sources

        try:
            return any(s.id == source_id for s in load_sources(Path(settings.config)))
        except SourceConfigError:
            return False
    return False


def live(source: RegisteredSource) -> None:
    if source.withdrawn_at is not None:
        raise Conflict(f"source {source.id!r} was withdrawn on {source.withdrawn_at}")


def refuse_declared_excess(request: Request, cap: int) -> None:
    """413 before reading anything when the declared length is over the cap (form overhead
    allowed); the read itself stays capped, since a length may be absent or false."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap + _FORM_OVERHEAD:
        raise PayloadTooLarge(f"{declared} bytes sent; pushes are at most {cap} bytes")


async def capped_body(request: Request, cap: int) -> bytes:
    refuse_declared_excess(request, cap)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise PayloadTooLarge(f"the document is over the limit of {cap} bytes")
    return bytes(body)


def store_push(request: Request, source: RegisteredSource, content: bytes, suffix: str) -> Path:
    """Keep the pushed bytes under DATA_DIR/uploads/{source}/ (the newest three)."""
    directory = request.app.state.settings.data_dir / "uploads" / source.id
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    path = directory / f"{stamp}-{hashlib.sha256(content).hexdigest()[:12]}{suffix}"
    path.write_bytes(content)
    for old in sorted(directory.iterdir())[:-3]:
        old.unlink(missing_ok=True)
    accounts(request).set_upload(source.id, path)
    return path


def harvest_push(request: Request, source: RegisteredSource, path: Path, format_name: str | None) -> Job:
    feed = replace(source.as_source(), url=None, path=path, format=format_name)
    return job_runner(request).submit(feed, "upload", follow_up=True)[0]


# --- routes -----------------------------------------------------------------------------------


@router.get("/me", response_model=Me, summary="Who the token speaks for")
async def me(who: Caller) -> Me:
    return Me(role=who.role, organiser=who.organiser)


@router.get("/organisers", response_model=list[OrganiserOut], summary="Every organiser (operators)",
            responses=problem_responses(403))
async def list_organisers(request: Request, who: Caller) -> list[OrganiserOut]:
    operator_only(who)
    return [OrganiserOut(**o) for o in accounts(request).organisers()]


@router.post("/organisers", response_model=OrganiserOut, status_code=201,
             summary="Add an organiser (operators)", responses=problem_responses(403, 409))
async def add_organiser(request: Request, who: Caller, wanted: OrganiserIn) -> OrganiserOut:
    operator_only(who)
    registry = accounts(request)
    try:
        registry.add_organiser(wanted.id, wanted.name)
    except AccountError as exc:
        raise Conflict(str(exc)) from exc
    return next(OrganiserOut(**o) for o in registry.organisers() if o["id"] == wanted.id)


@router.get("/sources", response_model=list[SourceOut], summary="Your sources")
async def list_sources(request: Request, who: Caller) -> list[SourceOut]:
    mine = accounts(request).sources(None if who.is_operator else who.organiser)
    return [source_out(request, s) for s in mine]


@router.post("/sources", response_model=SourceOut, status_code=201, summary="Register a source",
             responses=problem_responses(403, 409, 422))
async def register_source(request: Request, who: Caller, wanted: SourceIn) -> SourceOut:
    source = await run_in_threadpool(checked_source, request, who, wanted)
    if await run_in_threadpool(id_taken_elsewhere, request, wanted.id):
        raise Conflict(f"source id {wanted.id!r} is taken")
    try:
        accounts(request).add_source(source)
    except AccountError as exc:
        raise Conflict(str(exc)) from exc
    return source_out(request, source)


@router.get("/sources/{source_id}", response_model=SourceOut, summary="One of your sources",
            responses=problem_responses(404))
async def get_source(request: Request, who: Caller, source_id: str) -> SourceOut:
    return source_out(request, owned_source(request, who, source_id))


@router.get("/sources/{source_id}/jobs", response_model=list[JobOut],
            summary="The source's last harvest jobs, newest first",
            responses=problem_responses(404))
async def source_jobs(request: Request, who: Caller, source_id: str) -> list[JobOut]:
    owned_source(request, who, source_id)
    return [job_out(request, j) for j in job_runner(request).jobs.of_source(source_id)]


@router.get("/sources/{source_id}/usage", response_model=Usage,
            summary="How the source's data is used: counts by day and month, no personal data",
            responses=problem_responses(404))
async def source_usage(request: Request, who: Caller, source_id: str) -> Usage:
    owned_source(request, who, source_id)
    counter = request.app.state.usage
    figures = await run_in_threadpool(counter.figures, source_id)
    summary = await run_in_threadpool(counter.summary, source_id)
    return Usage(**figures, last_30_days=summary["last_30_days"], by_month=summary["by_month"])


@router.post("/sources/{source_id}/harvest", response_model=JobOut, status_code=202,
             summary="Harvest the source's URL now, as a job",
             responses=problem_responses(404, 409))
async def start_harvest(request: Request, who: Caller, source_id: str) -> JSONResponse:
    source = owned_source(request, who, source_id)
    live(source)
    if not source.url and not source.upload:
        raise Conflict(f"source {source_id!r} has no URL and nothing was pushed yet")
    job, _ = job_runner(request).submit(source.as_source(), "api")
    return accepted(request, job)


@router.post("/sources/{source_id}/upload", response_model=JobOut, status_code=202,
             summary="Push a feed file (multipart field `file`) and harvest it, as a job",
             responses=problem_responses(404, 409, 413))
async def upload_feed(request: Request, who: Caller, source_id: str) -> JSONResponse:
    source = owned_source(request, who, source_id)
    live(source)
    registered_only(source)
    cap = request.app.state.settings.api_max_upload_bytes
    refuse_declared_excess(request, cap)
    form = await request.form(max_files=1, max_fields=5, max_part_size=cap + _FORM_OVERHEAD)
    item = form.get("file")
    if not isinstance(item, UploadFile) or not item.filename:
        raise BadRequest("send the feed as a multipart form field named `file`")
    content = await item.read(cap + 1)
    if len(content) > cap:
        raise PayloadTooLarge(f"{item.filename}: over the limit of {cap} bytes")
    suffix = Path(item.filename).suffix.lower()
    suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix) else ""
    path = await run_in_threadpool(store_push, request, source, content, suffix)
    return accepted(request, harvest_push(request, source, path, source.format))


@router.post("/sources/{source_id}/jsonld", response_model=JobOut, status_code=202,
             summary="Push a JSON-LD document (schema.org events) and harvest it, as a job",
             responses=problem_responses(404, 409, 413))
async def push_jsonld(request: Request, who: Caller, source_id: str) -> JSONResponse:
    source = owned_source(request, who, source_id)
    live(source)
    registered_only(source)
    content = await capped_body(request, request.app.state.settings.api_max_upload_bytes)
    try:
        document = json.loads(content)
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from exc
    if not isinstance(document, (dict, list)):
        raise BadRequest("the body must be a JSON-LD object or array")
    path = await run_in_threadpool(store_push, request, source, content, ".jsonld")
    return accepted(request, harvest_push(request, source, path, "jsonld"))


@router.get("/jobs/{job_id}", response_model=JobOut, summary="A harvest job's progress and report",
            responses=problem_responses(404))
async def get_job(request: Request, who: Caller, job_id: str) -> JobOut:
    job = job_runner(request).jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    owned_source(request, who, job.source)
    return job_out(request, job)


@router.delete("/sources/{source_id}", response_model=Withdrawn,
               summary="Withdraw the source: its events leave every publication at once",
               responses=problem_responses(404, 409))
async def withdraw_source(request: Request, who: Caller, source_id: str) -> Withdrawn:
    source = owned_source(request, who, source_id)
    live(source)
    runner = job_runner(request)
    if source.declared:
        accounts(request).withdraw_declared(source_id)  # `affiche harvest` skips it from now on
    else:
        accounts(request).withdraw_source(source_id)

    def withdraw() -> int:
        with runner.write_lock:
            removals = drop_source(runner.store, runner.changes, runner.settings.base_url, source_id)
        runner.refresh_dumps()
        return removals

    removals = await run_in_threadpool(withdraw)
    base = request.app.state.settings.base_url
    return Withdrawn(withdrawn=identity.graph_iri(base, source_id), removals=removals)


@router.delete("/sources/{source_id}/events/{key}", response_model=Withdrawn,
               summary="Withdraw one event of the source (it stays out of later harvests)",
               responses=problem_responses(404, 409))
async def withdraw_event(request: Request, who: Caller, source_id: str, key: str) -> Withdrawn:
    source = owned_source(request, who, source_id)
    live(source)
    runner = job_runner(request)
    base = request.app.state.settings.base_url
    event = identity.iri(base, "event", key)
    if not await run_in_threadpool(event_in_source, runner.store, base, source_id, event):
        raise NotFound(f"source {source_id!r} publishes no event {key!r}")
    if source.declared:
        accounts(request).withhold_declared_event(source_id, event)
    else:
        accounts(request).withhold_event(source_id, event)

    def withdraw() -> int:
        with runner.write_lock:
            removals = drop_event(runner.store, runner.changes, base, source_id, event)
        runner.refresh_dumps()
        return removals

    return Withdrawn(withdrawn=event, removals=await run_in_threadpool(withdraw))


@router.post("/sources/{source_id}/confirm", response_model=JobOut, status_code=202,
             summary="Publish a held-back harvest: harvest again, the loss guards lifted once",
             responses=problem_responses(404, 409))
async def confirm_harvest(request: Request, who: Caller, source_id: str) -> JSONResponse:
    """The last harvest was held back (no event, or too many lost): the organiser says the feed
    is right. The feed is fetched again and published as it is now, whatever it lost."""
    source = owned_source(request, who, source_id)
    live(source)
    report = await run_in_threadpool(load_report, request.app.state.settings.reports_dir, source_id)
    if not report or not report.get("held_back"):
        raise Conflict(f"source {source_id!r}: its last harvest was not held back; there is "
                       "nothing to confirm")
    runner = job_runner(request)
    if runner.busy(source_id):
        raise Conflict(f"source {source_id!r} is being harvested; confirm once that job is over")
    job, _ = runner.submit(source.as_source(), "confirm", accept_loss=True)
    return accepted(request, job)
