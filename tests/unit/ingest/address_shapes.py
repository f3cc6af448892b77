"""Addresses and domains of every shape around given domains, for tests that hold a faster rule
of "is this address of one of these domains" against the rule it replaced."""

from __future__ import annotations

from collections.abc import Iterable

#: Shapes around no domain in particular (empty, bare ``@``, a dot, a missing domain...).
ODD_SHAPES = ["", "@", ".", "bo@", "bo@.", "co", "bo@co", "bo@x.co", "bo@xco", "bo@co.uk"]


def shapes_around(domains: Iterable[str]) -> list[str]:
    """Each domain as is, upper-cased, under a subdomain, with a prefix glued on, under another
    domain and with a leading dot; each of those alone, as an address's domain, as a local part's
    suffix, after two ``@``, as a local part, after an empty label and as an address."""
    shapes: list[str] = []
    for domain in domains:
        for variant in (
            domain,
            domain.upper(),
            f"eu.{domain}",
            f"x{domain}",
            f"{domain}.example",
            f".{domain}",
        ):
            shapes += [
                variant,
                f"bo@{variant}",
                f"bo.{variant}",
                f"a@b@{variant}",
                f"{variant}@buyer.example",
                f"bo@a..{variant}",
                f"a@{variant}",
            ]
    return shapes
