"""CSRF tokens for the console's forms.

Signed-in forms carry an HMAC of the session's own secret, so a page on another site cannot
know it. The sign-in form has no session yet: it uses a double-submit cookie (a random value in
an HttpOnly cookie and in the form; they must match), which a cross-site form cannot set.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

FIELD = "csrf"
SIGNIN_COOKIE = "siaran_signin"
_PURPOSE = b"siaran console form"


def token_for(session_secret: str) -> str:
    return hmac.new(session_secret.encode(), _PURPOSE, hashlib.sha256).hexdigest()


def matches(expected: str, submitted: str | None) -> bool:
    return bool(expected) and submitted is not None and hmac.compare_digest(expected, submitted)


def new_signin_value() -> str:
    return secrets.token_urlsafe(24)
