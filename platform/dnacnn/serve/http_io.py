"""Reading request bodies under the service's limits, and error answers.

Every request-level problem becomes an :class:`ApiError` answered as JSON
``{"error": code, "message": ..., "errors": [...]}`` with a 4xx status: a body
over :data:`~dnacnn.serve.schemas.MAX_BODY_BYTES` (413), a body that is not JSON
(400; UTF-8 only), wrong types, missing or unknown fields, list limits, query parameters
(422), a missing or wrong token (401), a compressed body, or one sent with no Content-Type or
another media type than JSON (415), a body that has not arrived after :data:`BODY_TIMEOUT_S` (408); an unknown
path (404) or method (405) too. Nothing of the request is echoed back beyond field locations
and the path, each cut to :data:`ECHO_CHARS`.
"""

from __future__ import annotations

import asyncio
import json
from typing import TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from ray.exceptions import TaskCancelledError
from starlette.requests import ClientDisconnect
from starlette.exceptions import HTTPException as StarletteHTTPException

from dnacnn.serve.schemas import MAX_BODY_BYTES

M = TypeVar("M", bound=BaseModel)
#: Longest a request body may take to arrive, seconds (408 after).
BODY_TIMEOUT_S = 10.0


#: Characters of a client's text (a field name, a path) an error message quotes at most.
ECHO_CHARS = 80


def shorten(text: str, keep: int = ECHO_CHARS) -> str:
    """A client's text as an error quotes it: at most ``keep`` characters, then '...'."""
    return text if len(text) <= keep else text[:keep] + "..."


class ApiError(Exception):
    """A request the service refuses: answered with ``status`` and a JSON body."""

    def __init__(self, status: int, error: str, message: str, errors: list[dict] | None = None,
                 headers: dict[str, str] | None = None, **extra) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.errors, self.headers, self.extra = errors, headers, extra

    def response(self) -> JSONResponse:
        body = {"error": self.error, "message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return JSONResponse(body, status_code=self.status, headers=self.headers)


async def api_error_handler(request: Request, err: ApiError) -> JSONResponse:
    """FastAPI exception handler for :class:`ApiError`."""
    return err.response()


async def http_error_handler(request: Request, err: StarletteHTTPException) -> JSONResponse:
    """The router's own errors (unknown path 404, method 405) in the same JSON shape."""
    code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
    path = shorten(request.url.path)
    message = {404: f"no route {path!r}; see /docs",
               405: f"{shorten(request.method)} is not allowed on {path!r}"}.get(err.status_code, str(err.detail))
    return ApiError(err.status_code, code, message, headers=getattr(err, "headers", None)).response()


async def read_model(request: Request, model: type[M], max_bytes: int = MAX_BODY_BYTES) -> M:
    """The request body as ``model``, read in chunks and refused past ``max_bytes``.

    Raises:
        ApiError: 413 too large, 400 not JSON (or nested too deep to parse), 422 invalid.
    """
    too_large = ApiError(413, "too_large", f"the request body is over the limit of {max_bytes} bytes; "
                                           "send fewer variants or sequences per request")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        # another site's page can POST a form, text/plain or (a Blob of no type) no Content-Type
        # at all without asking first: each is refused, not scored
        sent = f"Content-Type {shorten(media)!r} is not accepted" if media else "the request has no Content-Type"
        raise ApiError(415, "unsupported_media_type", f"{sent}; send the body as Content-Type: application/json")
    if request.query_params:
        raise ApiError(422, "invalid_request", f"query parameter(s) {shorten(', '.join(request.query_params))} "
                                               "are not read; put every field in the JSON body")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise too_large
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ApiError(415, "unsupported_encoding", f"Content-Encoding {shorten(encoding)!r} is not accepted; "
                                                    "send the JSON body uncompressed")

    async def body() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    try:  # a body that stalls would hold one of the replica's request slots for good
        async with asyncio.timeout(BODY_TIMEOUT_S):  # in this task: none left behind when the client goes
            raw = await body()
    except TimeoutError:
        raise ApiError(408, "body_timeout", f"the request body did not arrive within {BODY_TIMEOUT_S:g} s",
                       headers={"Connection": "close"}) from None
    except (ClientDisconnect, TaskCancelledError):  # nobody is left to answer: no trace in the service's log
        # (Serve's proxy cancels its side of a request whose client went: the replica's next read
        # of the body raises Ray's TaskCancelledError)
        raise ApiError(400, "client_disconnected", "the client closed the connection before "
                                                   "its body arrived") from None
    try:  # JSON is UTF-8 (RFC 8259): no guessing of UTF-16 from the first bytes, as json.loads does
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ApiError(400, "invalid_json", f"the request body is not UTF-8 text (byte {err.start}); "
                                            "JSON is sent as UTF-8") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        reason = ("nested too deeply" if isinstance(err, RecursionError)
                  else "a number with too many digits" if "digits" in str(err) else str(err))
        raise ApiError(400, "invalid_json", f"the request body is not JSON ({reason})") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        errors = [{"loc": shorten(".".join(str(p) for p in e["loc"])) or "body", "message": e["msg"]}
                  for e in err.errors(include_input=False, include_url=False)]
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ApiError(422, "invalid_request", f"{first['loc']}: {first['message']}{more}",
                       errors=errors[:50]) from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the request body is nested too deeply") from None
