"""Reading request bodies under the service's limits, and error answers.

Every request-level problem becomes an :class:`ApiError` answered as JSON
``{"error": code, "message": ..., "errors": [...]}`` with a 4xx status: a body
over :data:`~dnacnn.serve.schemas.MAX_BODY_BYTES` (413), a body that is not JSON
(400), wrong types, missing or unknown fields, list limits (422), a missing or
wrong token (401). Nothing of the request is echoed back beyond field locations.
"""

from __future__ import annotations

import json
from typing import TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from dnacnn.serve.schemas import MAX_BODY_BYTES

M = TypeVar("M", bound=BaseModel)


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


async def read_model(request: Request, model: type[M], max_bytes: int = MAX_BODY_BYTES) -> M:
    """The request body as ``model``, read in chunks and refused past ``max_bytes``.

    Raises:
        ApiError: 413 too large, 400 not JSON (or nested too deep to parse), 422 invalid.
    """
    too_large = ApiError(413, "too_large", f"the request body is over the limit of {max_bytes} bytes; "
                                           "send fewer variants or sequences per request")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    try:
        data = json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise ApiError(400, "invalid_json", f"the request body is not JSON ({reason}); "
                                            "send Content-Type: application/json") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        errors = [{"loc": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
                  for e in err.errors(include_input=False, include_url=False)]
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ApiError(422, "invalid_request", f"{first['loc']}: {first['message']}{more}",
                       errors=errors[:50]) from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the request body is nested too deeply") from None
