"""Turning errors into answers, in one place: problem+json for clients, a page for browsers.

Errors carry their own status (`sparql.errors.HTTPProblem`); a store outage is a 502, never a 404.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sparql.accept import best_match
from sparql.errors import BadRequest, HTTPProblem, NotFound, StoreUnavailable
from sparql.store import StoreError

from .i18n import page_language
from .templating import template_context


def _wants_html(request: Request) -> bool:
    """Browsers name text/html explicitly; API clients and `*/*` get problem+json."""
    accept = request.headers.get("accept") or ""
    offered = ["application/problem+json", "text/html"]
    return "text/html" in accept and best_match(accept, offered) == "text/html"


def problem_response(request: Request, problem: HTTPProblem) -> Response:
    headers = dict(problem.headers)
    if _wants_html(request):
        templates = request.app.state.templates
        language = page_language(request, request.app.state.settings.default_language)
        context = template_context(request, language, status=problem.status,
                                   title=problem.title, detail=problem.detail)
        return templates.TemplateResponse(request, "error.html", context,
                                          status_code=problem.status, headers=headers)
    body = {"type": "about:blank", "title": problem.title, "status": problem.status,
            "detail": problem.detail, "instance": str(request.url.path)}
    return JSONResponse(body, status_code=problem.status, headers=headers,
                        media_type="application/problem+json")


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPProblem)
    async def _problem(request: Request, exc: HTTPProblem) -> Response:
        return problem_response(request, exc)

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> Response:
        return problem_response(request, StoreUnavailable(f"the data store failed: {exc}"))

    @app.exception_handler(StarletteHTTPException)
    async def _starlette(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return problem_response(request, NotFound(f"nothing at {request.url.path}"))
        problem = HTTPProblem(str(exc.detail))
        problem.status, problem.title = exc.status_code, str(exc.detail)
        return problem_response(request, problem)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return problem_response(request, BadRequest(details))
