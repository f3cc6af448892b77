"""The free-mail list: exact domains, brands under country suffixes, tenant additions."""

from __future__ import annotations

import pytest

from libs.common.personal_domains import (
    company_domains,
    email_domain,
    is_personal_domain,
    mailbox_address,
    mailbox_forms,
    parent_domains,
)


@pytest.mark.parametrize(
    ("domain", "personal"),
    [
        ("gmail.com", True),
        ("googlemail.com", True),
        ("GMAIL.COM", True),
        ("eu.gmail.com", True),
        ("outlook.com", True),
        ("hotmail.co.uk", True),
        ("hotmail.fr", True),
        ("yahoo.com.br", True),
        ("yahoo.co.jp", True),
        ("gmx.net", True),
        ("gmx.de", True),
        ("yandex.kz", True),
        ("web.de", True),
        ("mail.ru", True),
        ("qq.com", True),
        ("163.com", True),
        ("proton.me", True),
        ("icloud.com", True),
        ("fastmail.com", True),
        ("hey.com", True),
        # internet providers' mail
        ("cox.net", True),
        ("shaw.ca", True),
        ("bigpond.com", True),
        ("xtra.co.nz", True),
        ("talktalk.net", True),
        ("sapo.pt", True),
        ("acme.com", False),
        ("outlook.acme.com", False),
        ("yahoo-inc.com", False),
        ("gmail.acme.io", False),
        ("live.example", False),
        ("mail.com.acme.io", False),
    ],
)
def test_is_personal_domain(domain: str, personal: bool) -> None:
    assert is_personal_domain(domain) is personal


def test_a_tenant_can_add_domains() -> None:
    assert not is_personal_domain("alumni.uni.example")
    assert is_personal_domain("alumni.uni.example", extra=["Alumni.Uni.Example"])
    assert is_personal_domain("class-of-99.alumni.uni.example", extra=["alumni.uni.example"])


@pytest.mark.parametrize(
    ("address", "domain"),
    [("Amy@Acme.COM", "acme.com"), ("amy@acme.com.", "acme.com"), ("no-at-sign", None), ("amy@", None)],
)
def test_email_domain(address: str, domain: str | None) -> None:
    assert email_domain(address) == domain


def test_parent_domains_stop_before_the_bare_suffix() -> None:
    assert parent_domains("eu.mail.acme.com") == ("eu.mail.acme.com", "mail.acme.com", "acme.com")
    assert parent_domains("acme.com") == ("acme.com",)


def test_the_company_domains_read_from_reps_addresses_leave_out_free_mail() -> None:
    rep_domains = ["seller.example", "gmail.com", "Seller.IO", "hotmail.co.uk", "", "contractors.example"]

    assert company_domains(rep_domains) == {"seller.example", "seller.io", "contractors.example"}
    assert company_domains(rep_domains, ["contractors.example"]) == {"seller.example", "seller.io"}


@pytest.mark.parametrize(
    ("address", "mailbox"),
    [
        ("lee+deals@buyer.example", "lee@buyer.example"),
        ("lee+a+b@buyer.example", "lee@buyer.example"),
        ("lee@buyer.example", None),
        ("+deals@buyer.example", None),
        ("lee+deals", None),
        # Gmail ignores dots and answers at googlemail.com too.
        ("jo.doe@gmail.com", "jodoe@gmail.com"),
        ("jo.doe+crm@googlemail.com", "jodoe@gmail.com"),
        ("jodoe@googlemail.com", "jodoe@gmail.com"),
        ("jodoe@gmail.com", None),
        ("...@gmail.com", None),
        ("jo.doe@gmail.com.br", None),
        ("jo.doe@buyer.example", None),
    ],
)
def test_a_plus_tag_and_gmails_dots_are_read_off_its_mailbox(address: str, mailbox: str | None) -> None:
    assert mailbox_address(address) == mailbox


def test_a_records_gmail_and_tagged_addresses_are_held_also_as_their_mailboxes() -> None:
    """A tagged address a record lists (the one a web form was filled in with) is held as listed
    and as its mailbox (before: as listed only, so the person's own untagged mail missed her)."""
    listed = (
        "Jo.Doe@Gmail.com",
        "jo@buyer.example",
        "max.x+crm@gmail.com",
        "amy@googlemail.com",
        "Pia+CRM@plume.example",
        "lee@buyer.example",
        "lee+deals@buyer.example",
    )
    assert mailbox_forms(listed) == [
        "jo.doe@gmail.com",
        "jo@buyer.example",
        "max.x+crm@gmail.com",
        "amy@googlemail.com",
        "pia+crm@plume.example",
        "lee@buyer.example",
        "lee+deals@buyer.example",
        "jodoe@gmail.com",
        "maxx@gmail.com",
        "amy@gmail.com",
        "pia@plume.example",
    ]
