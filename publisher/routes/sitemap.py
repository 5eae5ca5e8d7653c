"""`/sitemap.xml` and `/robots.txt`, for crawlers."""

from __future__ import annotations

from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from rdflib import Literal
from starlette.concurrency import run_in_threadpool

from harvester.identity import parse_iri
from sparql.queries import load_query

router = APIRouter()
PAGE_KINDS = {"event", "place", "organization", "person", "work"}


@router.get("/sitemap.xml", include_in_schema=False)
async def sitemap(request: Request) -> Response:
    settings = request.app.state.settings
    rows = await run_in_threadpool(request.app.state.store.select, load_query("sitemap"),
                                   {"prefix": Literal(settings.base_url + "/")})
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
             f"<url><loc>{escape(settings.base_url)}/</loc></url>"]
    for row in rows:
        parsed = parse_iri(settings.base_url, str(row["s"]))
        if parsed is None or parsed[0] not in PAGE_KINDS:
            continue
        lastmod = f"<lastmod>{escape(str(row['modified']))}</lastmod>" if row.get("modified") else ""
        lines.append(f"<url><loc>{escape(str(row['s']))}</loc>{lastmod}</url>")
    lines.append("</urlset>")
    return Response("\n".join(lines), media_type="application/xml")


@router.get("/robots.txt", include_in_schema=False)
async def robots(request: Request) -> Response:
    base = request.app.state.settings.base_url
    return PlainTextResponse(f"User-agent: *\nAllow: /\nDisallow: /sparql\nSitemap: {base}/sitemap.xml\n")
