"""The one error shape of the API (RFC 9457 `application/problem+json`), for the OpenAPI document.

`publisher.errors` turns every error into this body; routes declare it with `responses=` so that
the document says what clients really get (FastAPI would otherwise advertise its own 422 body,
which the app never sends: a request that does not validate is a 400 problem).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

MEDIA_TYPE = "application/problem+json"

MEANINGS = {
    400: "Malformed request: a parameter or body that does not validate, or a bad value",
    401: "No token, or an invalid or revoked one (`WWW-Authenticate: Bearer`)",
    403: "The token may not do this (an operator action)",
    404: "Nothing here, or not yours (another organiser's source answers the same)",
    406: "None of the media types the client accepts is offered",
    409: "In conflict with the current state (a taken id, a withdrawn source, nothing to confirm)",
    410: "Withdrawn by its organiser",
    413: "Over the size limit",
    422: "Understood but refused (a schedule too frequent, a private address, an unknown organiser)",
    "4XX": "Any other client error",
}


class Problem(BaseModel):
    """What every error answers, as `application/problem+json`."""

    type: str = Field("about:blank", description="always `about:blank`: the status says it all")
    title: str = Field(description="the status' short name")
    status: int = Field(description="the HTTP status, repeated")
    detail: str = Field(description="what went wrong, precisely, in English")
    instance: str = Field(description="the path that was asked for")


def problem_responses(*statuses: int | str) -> dict:
    """`responses=` entries documenting these statuses as problem+json `Problem` bodies."""
    schema = Problem.model_json_schema()  # inline: a `model` would be filed under application/json
    return {status: {"description": MEANINGS.get(status, "Error"),
                     "content": {MEDIA_TYPE: {"schema": schema}}} for status in statuses}
