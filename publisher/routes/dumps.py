"""`/dumps/`: the bulk files, listed with size, date and SHA-256, served from fixed URLs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from sparql.accept import best_match
from sparql.errors import NotFound

from ..dumps import list_dumps
from ..i18n import page_language
from ..templating import template_context

router = APIRouter()


@router.get("/dumps/", include_in_schema=False)
async def dump_index(request: Request) -> Response:
    settings = request.app.state.settings
    files = await run_in_threadpool(list_dumps, settings.dumps_dir)
    wanted = best_match(request.headers.get("accept"), ["text/html", "application/json"])
    if wanted == "application/json" or request.query_params.get("format") == "json":
        return JSONResponse([vars(f) for f in files], headers={"Vary": "Accept"})
    language = page_language(request, settings.default_language)
    return request.app.state.templates.TemplateResponse(
        request, "dumps.html", template_context(request, language, files=files),
        headers={"Vary": "Accept, Accept-Language"})


@router.get("/dumps/SHA256SUMS", include_in_schema=False)
async def checksums(request: Request) -> Response:
    files = await run_in_threadpool(list_dumps, request.app.state.settings.dumps_dir)
    return PlainTextResponse("".join(f"{f.sha256}  {f.name}\n" for f in files))


@router.get("/dumps/{name}", include_in_schema=False)
async def dump_file(request: Request, name: str) -> Response:
    # Only names from the listing are served: no path from the request reaches the file system.
    files = {f.name: f for f in await run_in_threadpool(list_dumps, request.app.state.settings.dumps_dir)}
    if name not in files:
        raise NotFound(f"no dump named {name!r}")
    dump = files[name]
    return FileResponse(request.app.state.settings.dumps_dir / dump.name,
                        media_type="application/gzip",
                        headers={"ETag": f'"{dump.sha256}"', "Cache-Control": "public, max-age=300",
                                 "X-Content-Media-Type": dump.media_type})
