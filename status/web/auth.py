"""Bearer-token check; scope enforcement itself lives in the core (one code path for every door)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from status import tokens
from status.model import Actor
from status.web.errors import APIError

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="siaran"'}


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if not header:
        raise APIError(
            401, "unauthorized", 'send "Authorization: Bearer <token>"', headers=_CHALLENGE
        )
    if scheme.lower() != "bearer" or not secret.strip():
        raise APIError(
            401,
            "unauthorized",
            'the Authorization header must be "Bearer <token>"',
            headers=_CHALLENGE,
        )
    return secret.strip()


async def authenticate(request: Request, conn: AsyncConnection) -> Actor:
    """The acting staff member, or 401; remembers where the request came from for the audit log."""
    secret = bearer(request)
    actor = await tokens.verify_token(conn, secret)
    if actor is None:
        raise APIError(401, "unauthorized", "the token is unknown or revoked", headers=_CHALLENGE)
    return Actor(
        actor.name,
        actor.scopes,
        token_id=actor.token_id,
        remote_addr=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", ""),
    )


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise APIError(403, "forbidden", "this needs an admin token")
