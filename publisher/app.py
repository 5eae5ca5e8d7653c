"""The FastAPI app: `create_app(settings)` opens the store and includes the routers, nothing more."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp

from site_templates import static_dir
from sparql.guard import SparqlLimits
from sparql.router import GZIP_INLINE_BYTES, GZIP_LEVEL, AnsweredFirst, SparqlEndpoint
from sparql.store import Store, open_store
from sparql.workers import start_public_runner

from .errors import install_handlers, problem_response
from .http_cache import ConditionalMiddleware, HeadMiddleware
from .routes import api, calendar, check, dumps, feed, pages, sitemap, sources, stats, vocabulary, void
from .problems import problem_responses
from .settings import Settings
from .templating import make_templates
from .usage import HeadNotCounted, UsageCounter, UsageMiddleware
from .warmer import start_warmer


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """Build the app; a given store is used as is (tests), otherwise the configured one is opened."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        owned = app.state.store is None
        if owned:
            app.state.store = open_store(settings.store, settings.data_dir,
                                         **settings.store_options())
        # /sparql queries run where they can be stopped at their deadline (sparql.workers).
        app.state.sparql_runner = start_public_runner(
            app.state.store, settings.data_dir / "sparql-snapshots",
            processes=settings.sparql_max_concurrent, timeout_s=settings.sparql_timeout_s,
            memory_mb=settings.sparql_worker_memory_mb)
        # Scheduled harvests and API jobs run here, beside the store (publisher.jobs).
        app.state.scheduler = api.start_scheduler(app)
        # The agenda and sitemap, computed again after each harvest (publisher.warmer).
        app.state.warmer = start_warmer(app)
        yield
        if app.state.warmer is not None:
            app.state.warmer.stop()
        api.stop_jobs(app)
        app.state.usage.flush()
        app.state.sparql_runner.close()
        app.state.sparql_runner = None
        if owned:
            app.state.store.close()
            app.state.store = None

    app = FastAPI(title=settings.site_name, lifespan=lifespan,
                  description="Cultural event listings as linked open data.",
                  responses=problem_responses("4XX"))  # every documented error is problem+json
    app.state.settings = settings
    app.state.store = store
    app.state.sparql_runner = None
    app.state.templates = make_templates()
    app.state.usage = UsageCounter(settings.data_dir)
    install_handlers(app)
    app.include_router(pages.router)
    app.include_router(sources.router)
    app.include_router(check.router)
    app.include_router(api.router)
    app.include_router(stats.router)
    app.include_router(dumps.router)
    app.include_router(feed.router)
    app.include_router(sitemap.router)
    app.include_router(calendar.router)
    app.include_router(void.router)
    app.include_router(vocabulary.router)
    sparql = SparqlEndpoint(
        # Without the lifespan (in-process test clients) queries go to the store directly.
        get_store=lambda: app.state.sparql_runner or app.state.store,
        limits=SparqlLimits(max_query_length=settings.sparql_max_query_length,
                            max_rows=settings.sparql_max_rows,
                            timeout_s=settings.sparql_timeout_s,
                            max_concurrent=settings.sparql_max_concurrent,
                            rate_per_minute=settings.sparql_rate_per_minute,
                            trusted_proxies=tuple(settings.trusted_proxies)),
        endpoint_url=lambda request: f"{settings.base_url}/sparql",
        html_page=pages.sparql_page,
    )
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    for layer in answer_layers(app.state.usage, compresslevel=6):
        app.add_middleware(layer.cls, *layer.args, **layer.kwargs)
    # /sparql is answered ahead of the router, in the same layers with its own gzip level.
    app.add_middleware(AnsweredFirst, path="/sparql", endpoint=layered(
        sparql.asgi(problem_response),
        answer_layers(app.state.usage, GZIP_LEVEL, thread_minimum_size=GZIP_INLINE_BYTES)))
    return app


def answer_layers(counter: UsageCounter, compresslevel: int,
                  thread_minimum_size: int = 128 * 1024) -> list[Middleware]:
    """What every answer passes through, innermost first: usage figures, ETag/304 on the plain
    answer, gzip, HEAD as a GET without its body (marked first: a HEAD is never a view)."""
    return [Middleware(UsageMiddleware, counter=counter), Middleware(ConditionalMiddleware),
            Middleware(GZipMiddleware, minimum_size=1000, compresslevel=compresslevel,
                       thread_minimum_size=thread_minimum_size),
            Middleware(HeadMiddleware), Middleware(HeadNotCounted)]


def layered(app: ASGIApp, layers: list[Middleware]) -> ASGIApp:
    """`app` wrapped in `layers`, innermost first."""
    for cls, args, kwargs in layers:
        app = cls(app, *args, **kwargs)
    return app

