"""The world's own oracle of ties: which labelled activities no rule can decide.

The world draws an activity's true deal at random among deals of one account; where the activity
and the CRM show nothing that sets the true deal apart from another one, the draw is a coin flip
and the right answer is "one of these" (``ambiguous`` with both), not a deal. This module says,
from the world's draws alone, which activities are such ties. It never reads a matcher's output
and imports nothing of ``services.attribution``: what it compares is written here.

Another deal ``D'`` is indistinguishable from the true deal ``D`` for an activity when
(``indistinguishable``):

* ``D'`` is of ``D``'s account and both are open at the activity's moment (created on or before
  it, not closed before it; the CRM as it stands once late records arrived): a deal created
  after the activity ties with nothing, as the world gives a late deal only to people on no
  deal open at the time;
* every participant relates to both alike: a person the CRM knows (by email, or by a phone only
  they have) holds a contact role on both or on neither; a rep owns both or neither (the crm
  owner reference likewise);
* the subject names both deals' products or neither;
* every earlier message of the activity's thread was itself unable to tell ``D'`` from ``D``
  (a thread is about one deal in this world, so an earlier message's signal carries over), and
  "open" for a reply means open when its thread began (a reply's delay is drawn without regard
  to the deal's life: a deal that closed in between is still the thread's deal).

What is deliberately *not* read: the kind of contact role (drawn at random per deal) and who
stands behind a number several contacts share (a switchboard call's deal is drawn among the
account's deals whoever picks up), which tell nothing; nor two artefacts of the world's draws that
no CRM carries as meaning: which contact a deal lists first and how long a deal lives. Everything
else that differs counts as a signal, even where the world would have drawn the same activity
for either deal (a colleague covering for the owner): when unsure, an activity is decidable, so
the decidable-only figures cannot be flattered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True, slots=True)
class DealFacts:
    """A deal as the CRM holds it once every late record arrived (owner as the canonical rep)."""

    id: str
    account_id: str
    owner_rep_id: str
    created_at: datetime
    closed_at: datetime | None
    product: str
    contact_ids: frozenset[str]

    def open_at(self, moment: datetime) -> bool:
        return self.created_at <= moment and (self.closed_at is None or moment <= self.closed_at)


@dataclass(frozen=True, slots=True)
class Seen:
    """One participant as the CRM can read it: the contacts its email or phone names (several for
    a shared number), or the rep behind it (``None`` for a shared inbox)."""

    role: str
    contact_ids: frozenset[str] = frozenset()
    rep_id: str | None = None
    is_rep: bool = False


@dataclass(frozen=True, slots=True)
class Observation:
    """What one labelled activity shows, and its true deal."""

    occurred_at: datetime
    true_deal_id: str | None
    participants: tuple[Seen, ...]
    subject: str | None = None
    thread_id: str | None = None
    #: The rep the source system names as the activity's owner (canonical), if any.
    crm_owner_rep_id: str | None = None


def signature(observation: Observation, deal: DealFacts) -> tuple[object, ...]:
    """How the activity relates to ``deal``: equal signatures cannot tell two deals apart."""
    relations: list[tuple[object, ...]] = []
    for seen in observation.participants:
        if seen.is_rep:
            relations.append(
                (seen.role, "owner", seen.rep_id is not None and seen.rep_id == deal.owner_rep_id)
            )
        elif len(seen.contact_ids) == 1:
            relations.append((seen.role, "on deal", bool(seen.contact_ids & deal.contact_ids)))
    # Participants in any order: two reps both attending tell nothing by who is listed first.
    parts = tuple(sorted(relations, key=repr))
    owner = observation.crm_owner_rep_id is not None and observation.crm_owner_rep_id == deal.owner_rep_id
    named = observation.subject is not None and deal.product in observation.subject
    return (deal.open_at(observation.occurred_at), parts, owner, named)


def indistinguishable(observation: Observation, truth: DealFacts, other: DealFacts) -> bool:
    """Whether the activity alone (its thread aside) cannot tell ``other`` from ``truth``."""
    return (
        other.id != truth.id
        and other.account_id == truth.account_id
        and truth.open_at(observation.occurred_at)
        and other.open_at(observation.occurred_at)
        and signature(observation, other) == signature(observation, truth)
    )


def tied_deals(
    observations: Sequence[Observation], deals: Mapping[str, DealFacts]
) -> tuple[frozenset[str], ...]:
    """For each observation, the other deals it cannot tell from its true deal (empty: decidable).

    A thread's message is tied only with deals every earlier message of the thread was tied with.
    """
    of_account: dict[str, list[DealFacts]] = {}
    for deal in deals.values():
        of_account.setdefault(deal.account_id, []).append(deal)
    tied: list[frozenset[str]] = [frozenset()] * len(observations)
    thread_so_far: dict[str, frozenset[str]] = {}
    thread_began: dict[str, datetime] = {}
    for number in sorted(range(len(observations)), key=lambda i: (observations[i].occurred_at, i)):
        observation = observations[number]
        truth = deals.get(observation.true_deal_id or "")
        if truth is None:
            continue
        if observation.thread_id is not None:
            # A reply is about its thread's deal whenever it comes (the world draws its delay
            # without regard to the deal's life): deals are open or not when the thread began.
            began = thread_began.setdefault(observation.thread_id, observation.occurred_at)
            observation = replace(observation, occurred_at=began)
        own = frozenset(
            other.id for other in of_account[truth.account_id] if indistinguishable(observation, truth, other)
        )
        if observation.thread_id is not None:
            own = thread_so_far.get(observation.thread_id, own) & own
            thread_so_far[observation.thread_id] = own
        tied[number] = own
    return tuple(tied)
