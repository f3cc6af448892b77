"""Free-mail and personal email domains: they say who a person is, never which company.

One list for every service: attribution never finds an account by one of these domains, and
neither attribution nor ingest (the direction of a vendor webhook) reads one as the tenant's
own when the tenant's domains are taken from its reps' addresses (``company_domains``).

An account is never found by one of these domains, even when a CRM record lists it (sole
traders often have ``gmail.com`` typed into their account): thousands of unrelated people
share it. A contact whose exact personal address is in the CRM is still found by that address.

Maintained as data: exact domains, plus providers that register one brand under many country
suffixes (``hotmail.co.uk``, ``yahoo.fr``, ``gmx.at``...), matched by their first label.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import lru_cache

PERSONAL_DOMAINS: frozenset[str] = frozenset(
    {
        # Google, Microsoft, Apple, Yahoo, AOL
        "gmail.com", "googlemail.com",
        "outlook.com", "hotmail.com", "live.com", "msn.com", "passport.com", "windowslive.com",
        "icloud.com", "me.com", "mac.com",
        "yahoo.com", "ymail.com", "rocketmail.com",
        "aol.com", "aim.com", "verizon.net", "att.net", "sbcglobal.net", "comcast.net",
        # North American and Oceanian internet providers' mail
        "cox.net", "charter.net", "earthlink.net", "optonline.net", "juno.com", "netzero.net",
        "shaw.ca", "rogers.com", "telus.net", "sympatico.ca", "videotron.ca", "bell.net",
        "bigpond.com", "bigpond.net.au", "optusnet.com.au", "iinet.net.au", "xtra.co.nz",
        # privacy-minded and independent providers
        "proton.me", "protonmail.com", "protonmail.ch", "pm.me", "tutanota.com", "tuta.io",
        "zoho.com", "zohomail.com", "fastmail.com", "fastmail.fm", "hey.com", "mailbox.org",
        "posteo.de", "hushmail.com", "runbox.com", "mail.com", "email.com", "inbox.com",
        # Europe
        "web.de", "t-online.de", "freenet.de", "arcor.de", "orange.fr", "wanadoo.fr", "free.fr",
        "laposte.net", "sfr.fr", "libero.it", "virgilio.it", "tiscali.it", "alice.it",
        "btinternet.com", "sky.com", "virginmedia.com", "ntlworld.com", "seznam.cz", "wp.pl",
        "o2.pl", "onet.pl", "interia.pl", "abv.bg", "inbox.lv", "telenet.be", "skynet.be",
        "ziggo.nl", "kpnmail.nl", "bluewin.ch", "chello.at", "talktalk.net", "blueyonder.co.uk",
        "planet.nl", "home.nl", "hetnet.nl", "tin.it", "neuf.fr", "bbox.fr", "aliceadsl.fr",
        "telefonica.net", "ono.com", "sapo.pt", "centrum.cz", "freemail.hu", "citromail.hu",
        "duck.com",
        # Russia, Asia, Latin America
        "mail.ru", "inbox.ru", "list.ru", "bk.ru", "rambler.ru", "ya.ru",
        "qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "sina.com", "sohu.com",
        "aliyun.com", "naver.com", "daum.net", "hanmail.net", "nate.com", "rediffmail.com",
        "bol.com.br", "uol.com.br", "terra.com.br",
    }
)  # fmt: skip

#: Brands registered under many country suffixes: ``<brand>.<suffix>`` is personal for any
#: plausible public suffix (``hotmail.co.uk``, ``yahoo.com.br``, ``gmx.net``, ``yandex.kz``).
PERSONAL_BRANDS: frozenset[str] = frozenset(
    {"hotmail", "outlook", "live", "windowslive", "yahoo", "gmx", "yandex"}
)

#: Suffixes a brand is registered under: any two-letter country code, a few generic ones,
#: and country second levels such as ``co.uk``, ``com.br``, ``ne.jp``.
_GENERIC_SUFFIXES = frozenset({"com", "net", "org", "info", "biz"})
_SECOND_LEVELS = frozenset({"co", "com", "net", "org", "ne", "or"})


def _looks_like_public_suffix(labels: list[str]) -> bool:
    def country(label: str) -> bool:
        return len(label) == 2 and label.isalpha()

    if len(labels) == 1:
        return country(labels[0]) or labels[0] in _GENERIC_SUFFIXES
    return len(labels) == 2 and labels[0] in _SECOND_LEVELS and country(labels[1])


@lru_cache(maxsize=65_536)
def email_domain(address: str) -> str | None:
    """The lower-cased domain of an address, or ``None`` when it has none."""
    _, at, domain = address.strip().lower().rpartition("@")
    return domain.rstrip(".") or None if at else None


def mailbox_address(address: str) -> str | None:
    """The mailbox a lower-cased address delivers to, or ``None`` when it is its own:
    ``lee@buyer.example`` for ``lee+deals@buyer.example`` (sub-addressing delivers to the mailbox
    without the ``+tag``: Gmail, Microsoft 365, Fastmail, Proton...), and for Gmail, which ignores
    dots and answers at both of its domains, ``jodoe@gmail.com`` for ``jo.doe@gmail.com``,
    ``Jo.Doe+crm@googlemail.com`` lower-cased."""
    local, at, domain = address.rpartition("@")
    base, plus, _ = local.partition("+")
    if not (at and base):
        return None
    if domain in GMAIL_DOMAINS:
        mailbox = f"{base.replace('.', '')}@gmail.com"
        return mailbox if mailbox != address and mailbox[0] != "@" else None
    return f"{base}@{domain}" if plus else None


#: Gmail's two domains: one mailbox answers at both, whatever dots its name is written with.
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def held_address(email: str) -> str:
    """An address as reps' and contacts' addresses are held and a participant's is matched
    against them: in Unicode's composed form (NFC: ``josé@`` typed with the accent as a separate
    mark is the same letter), lower-cased. The part of ``address_key`` that every comparison of
    addresses shares (rules 2026.12.40: before, attribution compared a participant's address
    lower-cased only, so a decomposed ``josé@`` missed the rep or contact listing it composed)."""
    if email.isascii():  # almost every address: no call
        return email.lower()
    return unicodedata.normalize("NFC", email).lower()


def address_key(email: str) -> str:
    """How reps' addresses are compared, and held for finding them (``linking_keys``): trimmed,
    in Unicode's composed form (NFC: an accent typed as a separate mark is the same letter),
    lower-cased (``held_address``), and a Gmail address as its mailbox (``Jo.Doe@googlemail.com``
    is ``jodoe@gmail.com``), its ``+tag`` kept."""
    address = held_address(email.strip())
    local, at, domain = address.rpartition("@")
    if at and local and domain in GMAIL_DOMAINS:
        base, plus, tag = local.partition("+")
        return f"{base.replace('.', '')}{plus}{tag}@gmail.com"
    return address


def untagged(key: str) -> str | None:
    """The mailbox a ``+tagged`` address key delivers to (``dan@`` for ``dan+hubspot@``), or
    ``None`` when it has no tag."""
    local, at, domain = key.rpartition("@")
    base, plus, _ = local.partition("+")
    return f"{base}@{domain}" if at and base and plus else None


def linking_keys(emails: Iterable[str]) -> list[str]:
    """The keys a rep is found by when another rep's record may be her person
    (``ref_reps.mailboxes``, written from her emails with her record): each address's
    ``address_key`` and, for a ``+tagged`` one, its untagged mailbox."""
    keys: set[str] = set()
    for email in emails:
        if email.strip():
            keys.add(key := address_key(email))
            if (mailbox := untagged(key)) is not None:
                keys.add(mailbox)
    return sorted(keys)


def mailbox_forms(addresses: Iterable[str]) -> list[str]:
    """Each address lower-cased, then the mailbox of those written another way
    (``mailbox_address``): how a CRM record's addresses are held, so that mail from any spelling
    of the mailbox finds it. A Gmail address is also its mailbox (``jo.doe@gmail.com`` is also
    ``jodoe@gmail.com``), and an address a record lists with its ``+tag`` (the one a web form was
    filled in with, ``pia+crm@plume.example``) is held as listed and as the mailbox it delivers to
    (``pia@plume.example``), so the person's own mail, and mail to another tag of hers, finds her.
    Each in Unicode's composed form (``held_address``)."""
    held = [held_address(a) for a in addresses]
    for address in tuple(held):
        mailbox = mailbox_address(address)
        if mailbox is not None and mailbox not in held:
            held.append(mailbox)
    return held


@lru_cache(maxsize=65_536)
def parent_domains(domain: str) -> tuple[str, ...]:
    """``eu.mail.acme.com`` -> itself, ``mail.acme.com``, ``acme.com``: never a bare suffix."""
    labels = domain.lower().rstrip(".").split(".")
    return tuple(".".join(labels[start:]) for start in range(len(labels) - 1))


def is_personal_domain(domain: str, extra: Iterable[str] = ()) -> bool:
    """Whether ``domain`` (or a parent of it) belongs to a free-mail or personal provider."""
    return _is_personal(domain, frozenset(item.lower() for item in extra) if extra else frozenset())


@lru_cache(maxsize=65_536)
def _is_personal(domain: str, extras: frozenset[str]) -> bool:
    # Pure in its arguments and called for every participant of every activity: cached.
    for candidate in parent_domains(domain):
        if candidate in PERSONAL_DOMAINS or candidate in extras:
            return True
        brand, _, suffix = candidate.partition(".")
        if brand in PERSONAL_BRANDS and _looks_like_public_suffix(suffix.split(".")):
            return True
    return False


def company_domains(rep_domains: Iterable[str], extra: Iterable[str] = ()) -> frozenset[str]:
    """The tenant's own domains read from its reps' addresses (when it configured none): every
    one but a free-mail domain. A rep who also uses ``ana.lopez@gmail.com`` does not make
    ``gmail.com`` the company's: taken as internal, every customer writing from a Gmail address
    would be a colleague, and the activities with them internal."""
    extras = tuple(extra)
    return frozenset(d.lower() for d in rep_domains if d and not is_personal_domain(d, extras))
