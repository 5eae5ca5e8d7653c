"""schemathesis over the app's own OpenAPI document: whatever the document lists (the checker's
API, the organiser API…), generated requests never get a 500 nor an answer that breaks the document.

Generic by design: the operations are read from the app's document when the tests are collected,
so routes added later are fuzzed without touching this file. (schemathesis' own pytest plugin does
not run under pytest 9 — `'Function' object has no attribute '_nodeid'` — so each operation's
hypothesis strategy is driven directly.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from harvester.pipeline import harvest
from publisher.app import create_app
from publisher.settings import Settings
from sparql.store import EmbeddedStore



def documented_answer_or_problem(ctx, response, case) -> bool | None:
    """Successful answers conform to the document (content type and schema); errors are the
    app's one error shape (STYLE 3): `application/problem+json` whose `status` is the HTTP status.

    FastAPI documents its own 422 body (`HTTPValidationError`, application/json), which the app's
    error handler replaces; holding errors to the document would only re-find that gap.
    """
    if response.status_code < 400:
        content_type_conformance(ctx, response, case)
        return response_schema_conformance(ctx, response, case)
    assert response.headers["content-type"][0].startswith("application/problem+json"), (
        response.status_code, response.headers["content-type"])
    body = response.json()
    assert body["status"] == response.status_code and body["title"] and "detail" in body, body
    return None


CHECKS = [not_a_server_error, documented_answer_or_problem]


def documented_operations() -> list[tuple[str, str]]:
    """(path, method) of every operation the app documents (its document does not need data)."""
    app = create_app(Settings(base_url="http://affiche.test"), store=EmbeddedStore(None))
    document = app.openapi()
    return sorted((path, method.upper()) for path, item in document["paths"].items()
                  for method in item if method in {"get", "post", "put", "patch", "delete"})


OPERATIONS = documented_operations()


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory, demo_sources):
    """The demo harvested into a data directory of its own: the fuzz may register organisers and
    sources through the API, which must not leak into the session's shared demo data."""
    data_dir = tmp_path_factory.mktemp("fuzzed")
    settings = Settings(base_url="http://affiche.test", data_dir=data_dir, sparql_rate_per_minute=0)
    store = EmbeddedStore(data_dir / "store")
    for source in demo_sources:
        harvest(source, store, settings.base_url, settings.reports_dir)
    yield create_app(settings, store=store), data_dir
    store.close()


@pytest.fixture(scope="module")
def api_schema(fuzzed_app):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app[0])


@pytest.fixture(scope="module")
def auth_headers(fuzzed_app) -> dict[str, str]:
    """An operator token, when the app has the organiser API, so the fuzz gets past the door."""
    try:
        from publisher.accounts import Accounts
    except ImportError:
        return {}
    return {"Authorization": f"Bearer {Accounts(fuzzed_app[1]).issue_token().token}"}


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_no_server_error_and_no_schema_violation(api_schema, auth_headers, path, method):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        case.call_and_validate(checks=CHECKS, headers=auth_headers)

    fuzz()


def test_the_document_lists_operations():
    """The fuzz above is only worth something if the document has operations to fuzz."""
    assert ("/api/check", "POST") in OPERATIONS
