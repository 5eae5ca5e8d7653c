"""The FastAPI app: `create_app(settings)` opens the store and includes the routers, nothing more."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from site_templates import static_dir
from sparql.guard import SparqlLimits
from sparql.router import sparql_router
from sparql.store import Store, open_store

from .errors import install_handlers
from .routes import dumps, pages, sitemap, sources
from .settings import Settings
from .templating import make_templates


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """Build the app; a given store is used as is (tests), otherwise the configured one is opened."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        owned = app.state.store is None
        if owned:
            app.state.store = open_store(settings.store, settings.data_dir)
        yield
        if owned:
            app.state.store.close()
            app.state.store = None

    app = FastAPI(title=settings.site_name, lifespan=lifespan,
                  description="Cultural event listings as linked open data.")
    app.state.settings = settings
    app.state.store = store
    app.state.templates = make_templates()
    install_handlers(app)
    app.include_router(pages.router)
    app.include_router(sources.router)
    app.include_router(dumps.router)
    app.include_router(sitemap.router)
    app.include_router(sparql_router(
        get_store=lambda: app.state.store,
        limits=SparqlLimits(max_query_length=settings.sparql_max_query_length,
                            max_rows=settings.sparql_max_rows),
        endpoint_url=lambda request: f"{settings.base_url}/sparql",
        html_page=pages.sparql_page,
    ))
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    return app

