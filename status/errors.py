"""Domain errors the core raises; web/errors.py maps each to one HTTP status.

DomainError
 ├── NotFoundError      an id that does not exist              → 404
 ├── ScopeError         the actor may not touch these things   → 403
 ├── InvalidError       a value the domain refuses (field)     → 422
 └── ConflictError      the state moved under the request      → 409
"""

from __future__ import annotations


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


class NotFoundError(DomainError):
    code = "not_found"


class ScopeError(DomainError):
    code = "forbidden"

    def __init__(self, message: str, *, action: str, target: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.action, self.target = action, target


class InvalidError(DomainError):
    code = "invalid"


class ConflictError(DomainError):
    code = "conflict"
