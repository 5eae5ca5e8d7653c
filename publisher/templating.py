"""The Jinja2 environment of the site, and the values every page template receives."""

from __future__ import annotations

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from .i18n import translator


def make_templates() -> Jinja2Templates:
    environment = Environment(
        loader=PackageLoader("site_templates", "."),
        autoescape=select_autoescape(["html", "xml"], default=True),
    )
    return Jinja2Templates(env=environment)


def template_context(request: Request, language: str, **values) -> dict:
    settings = request.app.state.settings
    return {"lang": language, "t": translator(language), "site_name": settings.site_name,
            "base_url": settings.base_url, "path": request.url.path, **values}
