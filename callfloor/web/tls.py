"""TLS served directly: the server's SSL context from ``[http] tls_cert`` and ``tls_key``."""

from __future__ import annotations

import ssl

from callfloor.config import ConfigError, HttpConfig

__all__ = ["server_context"]


class _Encrypted(Exception):
    """The private key asks for a passphrase (which the service has no way to type)."""


def _no_passphrase() -> str:
    raise _Encrypted


def server_context(http: HttpConfig, source: str = "<config>") -> ssl.SSLContext | None:
    """The SSL context to serve with, or ``None`` without ``tls_cert`` and ``tls_key``.

    TLS 1.2 at least, the ``ssl`` module's default ciphers for servers. A certificate
    and key that do not load (not PEM, not a pair, an encrypted key) are a
    :class:`ConfigError` naming both keys, so ``serve`` stops with one line (exit 2).
    The files are read once, at start: a renewed certificate needs a restart.
    """
    if http.tls_cert is None or http.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    where = f"{source}: http.tls_cert, http.tls_key"
    try:
        context.load_cert_chain(http.tls_cert, http.tls_key, password=_no_passphrase)
    except _Encrypted:
        raise ConfigError(
            f"{where}: the private key {http.tls_key!r} is encrypted; give the service an "
            "unencrypted key that only its user can read"
        ) from None
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        raise ConfigError(
            f"{where}: cannot load the certificate {http.tls_cert!r} with the key "
            f"{http.tls_key!r} ({reason}): expected a PEM certificate (chain) and its "
            "PEM private key"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read them: {exc.strerror}") from None
    return context
