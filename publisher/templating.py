"""The Jinja2 environment of the site, and the values every page template receives."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from .i18n import translator
from .views import format_when


def when(value: str, language: str) -> str:
    """An ISO 8601 date or date-time as written in the store, in the visitor's language."""
    parse = date.fromisoformat if len(value) == 10 else datetime.fromisoformat
    try:
        return format_when(parse(value), language)
    except ValueError:
        return value


def make_templates() -> Jinja2Templates:
    environment = Environment(
        loader=PackageLoader("site_templates", "."),
        autoescape=select_autoescape(["html", "xml"], default=True),
        auto_reload=False,  # templates ship with the package: no stat() of every file per page
    )
    environment.filters["when"] = when
    return Jinja2Templates(env=environment)


def template_context(request: Request, language: str, **values) -> dict:
    settings = request.app.state.settings
    return {"lang": language, "t": translator(language), "site_name": settings.site_name,
            "base_url": settings.base_url, "path": request.url.path, **values}
