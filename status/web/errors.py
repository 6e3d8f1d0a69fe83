"""APIError + exception handlers: {"error": {"code", "message", "field"}} with a 4xx."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from status.errors import ConflictError, DomainError, InvalidError, NotFoundError, ScopeError

log = logging.getLogger(__name__)

_DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotFoundError: 404,
    ScopeError: 403,
    InvalidError: 422,
    ConflictError: 409,
}


class APIError(Exception):
    """An HTTP-level refusal raised by the web layer (auth, parsing, content type)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, str | None] = {"code": code, "message": message, "field": field}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def handle_api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)  # noqa: S101 - registered for this type only
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)


async def handle_domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)  # noqa: S101 - registered for this type only
    return error_response(_DOMAIN_STATUS.get(type(exc), 400), exc.code, exc.message, exc.field)


async def handle_http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for this type only
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), None, dict(exc.headers or {}))


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    # Reaching this is a bug: log it with the path so it can be fixed, answer in our shape.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal error; it has been logged")


HANDLERS = {
    APIError: handle_api_error,
    DomainError: handle_domain_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
