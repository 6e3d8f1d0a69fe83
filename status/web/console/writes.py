"""A console form's change, done by the staff API's own `perform`: same parsing, scope checks,
audit, idempotency and transaction as a JSON request.

A refusal the person can fix (a bad value) becomes a FormError so the form is shown again with
what was wrong; a scope refusal stays a ScopeError and becomes the 403 page (the core has
already audited it as denied, and nothing else was written).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from status.errors import ConflictError, InvalidError, NotFoundError
from status.web.console.guard import Visit
from status.web.errors import APIError
from status.web.staff import Action, perform


class FormError(Exception):
    def __init__(self, status: int, message: str, field: str | None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


async def send(
    request: Request, current: Visit, key: str, doc: dict[str, Any], action: Action, status: int
) -> dict[str, Any]:
    """The JSON document the API would answer with (a double submit gets the first one back)."""
    try:
        written = await perform(request, current.session.actor, key, doc, action, status)
    except APIError as refused:
        if refused.status in (401, 403):
            raise
        raise FormError(refused.status, refused.message, refused.field) from None
    except (InvalidError, ConflictError) as refused:
        code = 409 if isinstance(refused, ConflictError) else 422
        raise FormError(code, refused.message, refused.field) from None
    except NotFoundError as refused:
        if refused.field is None:
            raise
        raise FormError(422, refused.message, refused.field) from None
    answer: dict[str, Any] = json.loads(written.body)
    return answer
