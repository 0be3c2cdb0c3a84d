"""Host names as the ``Host`` and ``Origin`` headers carry them, compared canonically."""

from __future__ import annotations

import ipaddress

__all__ = ["address_text", "host_name"]


def host_name(value: str) -> str | None:
    """The name in a ``Host`` header value: lower case, no port, no brackets, no trailing
    dot; an IP address in its canonical text. ``None`` when it is not a host at all."""
    text = value.strip().lower()
    if text.startswith("["):
        inside, bracket, _ = text[1:].partition("]")
        return address_text(inside) if bracket else None
    address = address_text(text)  # an IPv6 address sent without brackets
    if address is not None:
        return address
    name = text.rpartition(":")[0] if ":" in text else text
    name = name.rstrip(".")
    if not name or any(c in name for c in "/@ \t"):
        return None
    return address_text(name) or name


def address_text(text: str) -> str | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)
