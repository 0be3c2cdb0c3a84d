"""Browser sessions: a bearer token exchanged once for a signed cookie, and signed links.

A browser's ``EventSource`` cannot send an ``Authorization`` header, so with
``[http] read_tokens`` set a wallboard could not subscribe. A page exchanges a token once
(``POST /api/v1/session``, :mod:`~callfloor.web.login`) for a cookie per token kind
(``callfloor_read``, ``callfloor_write``): ``HttpOnly`` (no script reads it),
``SameSite=Strict`` (no other site's page sends it), ``Path=/``, ``Secure`` over HTTPS.
A TV that cannot type opens a *signed link* instead: a URL with ``access=...`` that is
exchanged for the same cookie and redirected to the URL without it.

Nothing is stored on the server. A cookie or a link names the token it was issued
under by a short fingerprint (a hash, never the token) and carries its expiry, signed
with a key derived from that token (HMAC-SHA256). So:

- every process that has the token in its configuration honours the session (several
  processes behind a load balancer, a restart);
- removing (rotating) a token from the configuration revokes every session and link
  issued under it, and only those;
- nothing about the token can be learnt from a cookie or a link.

A write through a session (an alert acknowledgement from the page) also needs the
session's CSRF token in the ``X-CSRF-Token`` header (derived from the cookie, handed to
the page by ``GET /api/v1/session``, which other sites cannot read), and an ``Origin``,
when sent, that names the host the request was sent to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Final

__all__ = [
    "COOKIE_PREFIX",
    "DEFAULT_SESSION_S",
    "MAX_LINK_S",
    "MAX_SESSION_S",
    "Grant",
    "SessionKeys",
    "cookie_name",
    "token_fingerprint",
]

COOKIE_PREFIX: Final = "callfloor_"
DEFAULT_SESSION_S: Final = 7 * 86400.0  # a token exchanged at a screen: a week
MAX_SESSION_S: Final = 30 * 86400.0
DEFAULT_LINK_S: Final = 30 * 86400.0  # a TV's link
MAX_LINK_S: Final = 365 * 86400.0
_FP_BYTES: Final = 9  # 12 base64 characters: enough to tell tokens apart, nothing more
_SIG_BYTES: Final = 32


def cookie_name(kind: str) -> str:
    """The cookie of a token kind (``read`` -> ``callfloor_read``)."""
    return COOKIE_PREFIX + kind


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def token_fingerprint(token: str) -> str:
    """The fingerprint a session grant names its token by."""
    return _fingerprint(token)


def _fingerprint(token: str) -> str:
    digest = hashlib.sha256(b"callfloor token fingerprint\0" + token.encode("utf-8"))
    return _b64(digest.digest()[:_FP_BYTES])


def _key(token: str) -> bytes:
    return hmac.new(token.encode("utf-8"), b"callfloor session key v1", hashlib.sha256).digest()


class Grant:
    """A verified cookie or link: the token kind it grants, under which token, until when."""

    __slots__ = ("expires", "fingerprint", "kind", "signature")

    def __init__(self, kind: str, fingerprint: str, expires: int, signature: str) -> None:
        self.kind = kind
        self.fingerprint = fingerprint
        self.expires = expires
        self.signature = signature

    def __repr__(self) -> str:  # never the signature: it is the credential
        return f"Grant(kind={self.kind!r}, expires={self.expires})"


class SessionKeys:
    """Issues and verifies cookies, CSRF tokens and links for the configured tokens.

    ``tokens`` maps each kind (``read``, ``write``) to its tokens. ``clock`` is the wall
    clock (epoch seconds).
    """

    __slots__ = ("_clock", "_keys")

    def __init__(
        self, tokens: Mapping[str, Iterable[str]], clock: Callable[[], float] = time.time
    ) -> None:
        # (kind, fingerprint) -> the key derived from that token.
        self._keys: dict[tuple[str, str], bytes] = {
            (kind, _fingerprint(token)): _key(token)
            for kind, values in tokens.items()
            for token in values
        }
        self._clock = clock

    def kinds(self) -> list[str]:
        """The token kinds that have tokens (what a session can be had for)."""
        return sorted({kind for kind, _ in self._keys})

    def _sign(self, key: bytes, *parts: str) -> str:
        return _b64(hmac.new(key, "|".join(parts).encode(), hashlib.sha256).digest())

    # ------------------------------------------------------------------ cookies

    def issue(self, kind: str, token: str, ttl_s: float) -> tuple[str, int]:
        """A cookie value granting ``kind`` under ``token`` for ``ttl_s``, and its expiry
        (epoch seconds). The caller has checked that ``token`` is one of ``kind``."""
        fp = _fingerprint(token)
        key = self._keys[(kind, fp)]
        expires = int(self._clock() + ttl_s)
        return f"{fp}.{expires}.{self._sign(key, 'cookie', kind, fp, str(expires))}", expires

    def verify(self, kind: str, value: str | None) -> Grant | None:
        """The grant of a cookie value, or None (malformed, forged, expired, or issued
        under a token no longer configured)."""
        return self._verify("cookie", kind, value)

    def _verify(self, use: str, kind: str, value: str | None) -> Grant | None:
        if not value or len(value) > 200:
            return None
        fp, _, rest = value.partition(".")
        expiry, _, signature = rest.partition(".")
        if not expiry.isdigit() or len(signature) != 43:
            return None
        key = self._keys.get((kind, fp))
        if key is None:
            return None
        expected = self._sign(key, use, kind, fp, expiry)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            return None
        expires = int(expiry)
        if expires <= self._clock():
            return None
        return Grant(kind, fp, expires, signature)

    def reissue(self, grant: Grant, expires: int, use: str = "cookie") -> str:
        """A value of ``use`` (``cookie`` or ``link``) with ``grant``'s kind and token,
        expiring at ``expires``."""
        key = self._keys[(grant.kind, grant.fingerprint)]
        fp, stamp = grant.fingerprint, str(expires)
        return f"{fp}.{stamp}.{self._sign(key, use, grant.kind, fp, stamp)}"

    def csrf(self, grant: Grant) -> str:
        """The CSRF token of a session: a page must send it with each write."""
        key = self._keys[(grant.kind, grant.fingerprint)]
        return self._sign(key, "csrf", grant.signature)

    def csrf_matches(self, grant: Grant, presented: str | None) -> bool:
        """Whether ``presented`` is the CSRF token of ``grant`` (constant time)."""
        if not presented:
            return False
        expected = self.csrf(grant).encode()
        return hmac.compare_digest(expected, presented.encode("utf-8", "replace"))

    # ------------------------------------------------------------------ links

    def link(self, grant: Grant, ttl_s: float) -> tuple[str, int]:
        """A link value granting ``grant``'s kind under the same token for ``ttl_s``."""
        expires = int(self._clock() + ttl_s)
        return self.reissue(grant, expires, use="link"), expires

    def link_for_token(self, kind: str, token: str, ttl_s: float) -> tuple[str, int]:
        """A link value granting ``kind`` under ``token`` (a bearer token's holder)."""
        fp = _fingerprint(token)
        grant = Grant(kind, fp, 0, "")
        return self.link(grant, ttl_s)

    def verify_link(self, kind: str, value: str | None) -> Grant | None:
        """The grant of a link value, or None (as :meth:`verify`)."""
        return self._verify("link", kind, value)
