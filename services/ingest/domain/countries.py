"""A CRM record's country as CRMs hold it -> the ISO 3166 region its national phones are read in.

A contact abroad is typed as its own country dials it (a UK buyer's ``020 7946 0958``): read in
the tenant's region it is no number, or someone else's. When the CRM states where the contact
(or its account) is, that country is the region its national-format phones are read in first
(:func:`phone_regions_of`); a phone written with ``+`` or an international prefix is read as
written wherever the contact is.

Country values are read as HubSpot's ``country``, Salesforce's ``MailingCountry`` /
``BillingCountry`` and spreadsheets hold them: an ISO 3166 alpha-2 (``GB``) or alpha-3 (``GBR``)
code, or an English name (``United Kingdom``, ``Korea, Republic of``, ``South Korea``), as the
ISO standard (``pycountry``) spells them, case and surrounding punctuation ignored, plus the
everyday names the standard does not use (``UK``, ``England``, ``Russia``, ``Holland``...).
Nothing is guessed: any other value is unknown, and the next source of the region applies.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

import phonenumbers
import pycountry

#: Names CRMs hold that ISO 3166 does not (its names are ``United Kingdom``, ``Russian
#: Federation``...): the UK and its nations, everyday short forms, Kosovo.
EVERYDAY_NAMES: dict[str, str] = {
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "america": "US",
    "russia": "RU",
    "holland": "NL",
    "the netherlands": "NL",
    "ivory coast": "CI",
    "turkey": "TR",
    "uae": "AE",
    "us virgin islands": "VI",
    # Kosovo has a numbering plan (+383) and a user-assigned code, not an ISO 3166 entry.
    "kosovo": "XK",
    "xk": "XK",
    "xkx": "XK",
}

#: An abbreviation of single letters each dotted (``U.S.A.``, ``U. K.``, the ``U.S.`` of ``U.S.
#: Virgin Islands``): its letters are one word (``USA``).
_ABBREVIATION = re.compile(r"\b[A-Za-z](?:\.\s?[A-Za-z]\b)+\.?")
#: What separates the words of a name (a dot after a word: ``St. Kitts and Nevis``).
_PUNCTUATION = re.compile(r"[.\s]+")
#: ``St`` for ``Saint`` (``St Lucia``, ``St. Kitts and Nevis``): ISO 3166 spells ``Saint``.
_SAINT = re.compile(r"^st\b", re.IGNORECASE)


@functools.lru_cache(maxsize=1_024)
def country_code(raw: str) -> str | None:
    """The ISO 3166 alpha-2 code of the country ``raw`` names, when phones are numbered there;
    ``None`` when it names none (``"N/A"``, ``"Europe"``) or one without a numbering plan
    (Antarctica)."""
    text = raw.strip()
    if not text or len(text) > 64:
        return None
    letters = _ABBREVIATION.sub(lambda found: re.sub(r"[.\s]", "", found.group()), text)
    compact = _PUNCTUATION.sub(" ", letters).strip()
    code = (
        EVERYDAY_NAMES.get(compact.lower())
        or _iso_code(compact)
        or _iso_code(_SAINT.sub("Saint", compact))
        or _iso_code(text)  # ISO's own dotted names (``Virgin Islands, U.S.``)
    )
    return code if code in phonenumbers.SUPPORTED_REGIONS else None


def _iso_code(text: str) -> str | None:
    if text.isdigit():
        return None  # ISO's numeric codes (826) are not how a CRM holds a country
    try:
        found = pycountry.countries.lookup(text)
    except LookupError:
        return None
    return str(found.alpha_2)


def country_of(raw: str | None) -> str | None:
    """:func:`country_code` of a field a record may leave out or empty (``None`` then)."""
    return country_code(raw) if raw else None


def contact_phone_regions(
    contact_country: str | None,
    account_id: str | None,
    sent_countries: Mapping[str, str | None],
    held_countries: Mapping[str, str],
    default: str,
) -> tuple[str, ...]:
    """The regions a contact's national-format phones are read in (:func:`phone_regions_of`):
    its own country, else its account's as the same batch sends the account
    (``sent_countries``: account id -> alpha-2, ``None`` when that version states none that can
    be read; the batch's version is the account's country now), else as held from an earlier
    sync (``held_countries``), else the tenant's region ``default``. The countries are alpha-2
    codes already read by :func:`country_code`. The one rule of CRM sync and every CRM vendor's
    adapter."""
    of_account: str | None = None
    if account_id:
        of_account = (
            sent_countries[account_id] if account_id in sent_countries else held_countries.get(account_id)
        )
    return phone_regions_of(contact_country, of_account, default)


def phone_regions_of(
    contact_country: str | None, account_country: str | None, default: str
) -> tuple[str, ...]:
    """The regions a contact's national-format phones are read in, first to last
    (``phones.parse_phone_in``): the contact's own country, then its account's, then the tenant's
    (``tenant_config.phone_region``), each once. Each country is an alpha-2 code already read by
    :func:`country_code`."""
    return tuple(dict.fromkeys(c for c in (contact_country, account_country, default) if c))
