"""The console's cookies: the signed session cookie, its CSRF token, the sign-in form's token.

The session cookie carries the session token and an HMAC of it (keyed by the service's
secret key), so a forged or truncated cookie is refused before the database is asked.
It is HttpOnly, SameSite=Lax, Secure when the console is reached over https, and has no
Max-Age: the server ends it (idle and absolute expiry in ``app.auth.console_sessions``).
The CSRF token is an HMAC of the session token: every state-changing request must send it
(form field ``csrf_token`` or header ``X-CSRF-Token``), which a cross-site page cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from app.settings import Settings

SESSION_COOKIE = "salesbridge_session"
SIGN_IN_COOKIE = "salesbridge_sign_in"  # double-submit token of the sign-in form
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SIGN_IN_COOKIE_SECONDS = 3600


def _mac(settings: Settings, purpose: str, value: str) -> str:
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


def is_secure(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.public_url.startswith("https://")


def set_session_cookie(
    response: Response, request: Request, settings: Settings, *, token: str
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        f"{token}.{_mac(settings, 'session', token)}",
        httponly=True,
        samesite="lax",
        secure=is_secure(request, settings),
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def session_token(request: Request, settings: Settings) -> str | None:
    """The token of a correctly signed session cookie, else None."""
    raw = request.cookies.get(SESSION_COOKIE, "")
    token, _, mac = raw.rpartition(".")
    if not token or len(raw) > 200:
        return None
    if not hmac.compare_digest(mac, _mac(settings, "session", token)):
        return None
    return token


def csrf_token(settings: Settings, token: str) -> str:
    return _mac(settings, "csrf", token)


def is_csrf_valid(settings: Settings, token: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(str(sent), csrf_token(settings, token))


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)


def set_sign_in_cookie(
    response: Response, request: Request, settings: Settings, *, value: str
) -> None:
    response.set_cookie(
        SIGN_IN_COOKIE,
        value,
        max_age=SIGN_IN_COOKIE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=is_secure(request, settings),
        path="/sign-in",
    )


def is_sign_in_token_valid(request: Request, sent: str | None) -> bool:
    cookie = request.cookies.get(SIGN_IN_COOKIE)
    return bool(cookie) and bool(sent) and hmac.compare_digest(str(cookie), str(sent))
