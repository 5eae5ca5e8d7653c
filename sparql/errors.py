"""Errors that carry their HTTP status. Raised deep in the code, answered in one place
(`publisher.errors`): problem+json for API clients, a page for browsers."""

from __future__ import annotations


class HTTPProblem(Exception):
    status = 500
    title = "Internal error"
    headers: dict[str, str] = {}

    def __init__(self, detail: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = dict(headers or {})


class BadRequest(HTTPProblem):
    status, title = 400, "Bad request"


class BadQuery(BadRequest):
    title = "Malformed query"


class Unauthorized(HTTPProblem):
    status, title = 401, "Unauthorized"


class Forbidden(HTTPProblem):
    status, title = 403, "Forbidden"


class NotFound(HTTPProblem):
    status, title = 404, "Not found"


class NotAcceptable(HTTPProblem):
    status, title = 406, "Not acceptable"


class Conflict(HTTPProblem):
    status, title = 409, "Conflict"


class Gone(HTTPProblem):
    status, title = 410, "Gone"


class PayloadTooLarge(HTTPProblem):
    status, title = 413, "Payload too large"


class Unprocessable(HTTPProblem):
    status, title = 422, "Unprocessable content"


class TooManyRequests(HTTPProblem):
    status, title = 429, "Too many requests"


class StoreUnavailable(HTTPProblem):
    status, title = 502, "Store unavailable"


class ServiceBusy(HTTPProblem):
    status, title = 503, "Service busy"


class UpstreamTimeout(HTTPProblem):
    status, title = 504, "Query timed out"
