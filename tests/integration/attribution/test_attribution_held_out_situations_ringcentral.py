"""Held-out RingCentral situations, as a RingCentral admin wiring the account by docs/webhooks.md
("Wiring RingCentral") meets them: the subscription's validation request (on creation and on
renewal), then telephony session notifications shaped as RingCentral's Account Telephony
Sessions Event documents them (``uuid``, ``event``, ``timestamp``, ``subscriptionId``,
``ownerId``; ``body.telephonySessionId``, ``sequence``, ``eventTime``, ``parties[]`` with
``extensionId``, ``direction``, ``from`` / ``to`` ``phoneNumber``, ``status.code`` and
``reason``, ``missedCall``), posted with the tenant's verification token through ingest's
webhook route, the real broker, attribution, metrics and PostgreSQL, and read back as a sales
manager does through the gateway (the activity list, the reps' scorecards).

Acme's roster: Ana (extension mapped in ``rep_aliases``), Bo (extension not mapped, his direct
line in his rep's ``phones``), Cy (mapped, a member of the Sales queue); Globex's Dana (the
champion of Ana's deal-1), Eli (the champion of Bo's deal-2) and Fay (on no deal). Umbrella, a
second tenant with its own token, has one seller, Zed. Each call's truth, as a careful human
labels it, was written next to it before the first run.

Before the fixes that came with these tests, 18 of 23 situations were right (the handshakes,
the two tenants and 15 of the 20 calls): the call Cy picked up from the park location was Ana's
(both lines listed in answer order, attribution credits the first rep listed); the two calls
between Ana and Bo counted a dial, a connect and their talk (ingest called them outbound), the
one dialled by Bo's short extension number was also ``unmatched`` (one side listed, as a
withheld caller's); the call an IVR menu answered and routed to Ana counted the menu's 24 s as
her talk (324 s for 300 s). Ana's scorecard read 10 dials, 9 connects, 14,673 s of talk (8, 7,
14,045 right), Cy's 300 s (685 right). Then 22 of 23: the call only an IVR menu answered was
still Ana's connected inbound call of 39 s; nothing in a notification says a party is a menu
unless the caller chose an option in it (``CallerInputRedirect``).

Now the admin lists the auto-receptionist and the Sales queue in the tenant's ``menu_extensions``
(``PATCH /v1/settings/organization``, as docs/webhooks.md says), and three more calls meet
them (written with their truth before the run): the menu routing Dana to Ana on its timeout (no
key press: its 29 s were Ana's talk), the queue answering Eli with its greeting and hold music
before Cy picks up (its minute was Cy's talk), and Eli giving up on the hold music (90 s of
talk). Umbrella lists no menu, and its desk phone carries the menu's extension id: its call
stays Zed's 30 s. Without the setting, the four menu calls count the menu's seconds: Ana
14,353 s, Bo 210 s (the abandoned call, his deal's, a connected call of 90 s), Cy 924 s. Now every one of the 23 calls is counted as labelled (outcome, length, dials,
connects, conversations, talk: Ana 14,285 s, Cy 865 s), and 24 of 26 situations are right as a
whole: the two calls only a menu answered, counted as missed, are credited to the caller's
deal's owner (attribution's rule for an activity nobody on the seller's side is known in), where
the labeller put nobody (``KNOWN_LIMITS``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from tests.integration.attribution.test_attribution_held_out_situations_vendors import _deliver, _november
from tests.integration.ingest.ingest_integration_support import SECRETS, TENANT, dumps
from tests.integration.polling import references_landed
from tests.integration.quarter.quarter_support import (
    Tenant,
    configure,
    get,
    settle,
    tenant_of,
    webhook_tenant,
)

ACCOUNT = "37439510"
ANA_EXT, BO_EXT, CY_EXT = "62944090008", "62944090009", "62944090010"
QUEUE_EXT, IVR_EXT = "62944090100", "62944090001"
ANA_LINE, BO_LINE, CY_LINE = "+16505551234", "+16505551235", "+16505551236"
QUEUE_LINE, MAIN_LINE, ANA_MOBILE = "+16505550200", "+16505550100", "+14155559876"
DANA, ELI, FAY = "+14155552671", "+14155552672", "+14155552673"
ACCOUNT_EVENT = f"/restapi/v1.0/account/{ACCOUNT}/telephony/sessions"
ANA_EVENT = f"/restapi/v1.0/account/{ACCOUNT}/extension/{ANA_EXT}/telephony/sessions"
DAY = "2026-11-23"

ANA = {"phoneNumber": ANA_LINE, "name": "Ana Seller", "extensionId": ANA_EXT}
BO = {"phoneNumber": BO_LINE, "name": "Bo Closer", "extensionId": BO_EXT}
CY = {"phoneNumber": CY_LINE, "name": "Cy Newman", "extensionId": CY_EXT}
QUEUE = {"phoneNumber": QUEUE_LINE, "name": "Sales Queue", "extensionId": QUEUE_EXT}
IVR = {"phoneNumber": MAIN_LINE, "name": "Auto-Receptionist", "extensionId": IVR_EXT}

ROSTER: list[dict[str, Any]] = [
    {"entity_type": "rep", "id": "rep-ana", "name": "Ana Seller", "phones": [ANA_LINE]},
    {"entity_type": "rep", "id": "rep-bo", "name": "Bo Closer", "phones": [BO_LINE]},
    {"entity_type": "rep", "id": "rep-cy", "name": "Cy Newman", "phones": [CY_LINE]},
    {"entity_type": "account", "id": "acc-globex", "name": "Globex", "domains": ["globex.example"]},
    {"entity_type": "contact", "id": "con-dana", "account_id": "acc-globex", "phones": [DANA]},
    {"entity_type": "contact", "id": "con-eli", "account_id": "acc-globex", "phones": [ELI]},
    {"entity_type": "contact", "id": "con-fay", "account_id": "acc-globex", "phones": [FAY]},
    {
        "entity_type": "deal",
        "id": "deal-1",
        "name": "Globex Platform",
        "account_id": "acc-globex",
        "owner_rep_id": "rep-ana",
        "stage": "proposal",
        "created_at": "2026-09-01T00:00:00Z",
        "contacts": [{"contact_id": "con-dana", "role": "champion"}],
    },
    {
        "entity_type": "deal",
        "id": "deal-2",
        "name": "Globex Expansion",
        "account_id": "acc-globex",
        "owner_rep_id": "rep-bo",
        "stage": "proposal",
        "created_at": "2026-10-01T00:00:00Z",
        "contacts": [{"contact_id": "con-eli", "role": "champion"}],
    },
]
SETTINGS: dict[str, Any] = {
    "default_phone_region": "US",
    "rep_aliases": {ANA_EXT: "rep-ana", CY_EXT: "rep-cy"},
}


def party(
    party_id: str,
    code: str,
    own: dict[str, str],
    other: dict[str, str],
    direction: str = "Outbound",
    reason: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One party as the event lists it: ``from`` / ``to`` seen from the party (an outbound
    party's own line is ``from``, an inbound one's ``to``)."""
    status: dict[str, Any] = {"code": code, "rcc": False, **({"reason": reason} if reason else {})}
    ends = {"from": own, "to": other} if direction == "Outbound" else {"from": other, "to": own}
    return {
        "accountId": ACCOUNT,
        "extensionId": own.get("extensionId"),
        "id": party_id,
        "direction": direction,
        **ends,
        "status": status,
        "missedCall": extra.pop("missedCall", False),
        "standAlone": False,
        "muted": False,
        **extra,
    }


def note(
    session: str,
    sequence: int,
    at: str,
    *parties: dict[str, Any],
    event: str = ACCOUNT_EVENT,
    subscription: str = "sub-account",
) -> bytes:
    """One notification of ``session`` at ``DAY`` ``at`` (HH:MM:SS), to the subscription."""
    moment = f"{DAY}T{at}.000Z"
    return dumps(
        {
            "uuid": f"{subscription}-{session}-{sequence}",
            "event": event,
            "timestamp": moment,
            "subscriptionId": subscription,
            "ownerId": ANA_EXT,
            "body": {
                "sequence": sequence,
                "sessionId": "14567890" + str(sequence),
                "telephonySessionId": session,
                "serverId": "10.13.22.253.TAM",
                "eventTime": moment,
                "origin": {"type": "Call"},
                "parties": list(parties),
            },
        }
    )


def call(session: str, *steps: tuple[str, dict[str, Any]]) -> list[bytes]:
    """The notifications of ``session`` in delivery order, numbered from 1: each step (HH:MM:SS,
    the party it tells of)."""
    return [note(session, sequence, at, one) for sequence, (at, one) in enumerate(steps, 1)]


def outbound(session: str, own: dict[str, str], to: str, times: tuple[str, str, str]) -> list[bytes]:
    """A rep's outbound call: ringing at ``times[0]``, answered, hung up."""
    callee = {"phoneNumber": to}
    return call(
        session,
        (times[0], party("p-1", "Setup", own, callee)),
        (times[0], party("p-1", "Proceeding", own, callee)),
        (times[1], party("p-1", "Answered", own, callee)),
        (times[2], party("p-1", "Disconnected", own, callee, reason="CallFinished")),
    )


def inbound(p: str, code: str, own: dict[str, str], caller: dict[str, str], **more: Any) -> dict[str, Any]:
    return party(p, code, own, caller, "Inbound", **more)


def routed_to_ana(
    session: str, caller: dict[str, str], times: tuple[str, ...], menu_reason: str | None = None
) -> list[bytes]:
    """``caller`` calls the main number: the IVR answers at ``times[1]`` and hangs up at
    ``times[2]`` (``menu_reason``), routing the call to Ana, who answers at ``times[4]`` and hangs
    up at ``times[5]``."""
    return call(
        session,
        (times[0], inbound("p-1", "Proceeding", IVR, caller)),
        (times[1], inbound("p-1", "Answered", IVR, caller)),
        (times[2], inbound("p-1", "Disconnected", IVR, caller, reason=menu_reason)),
        (times[3], inbound("p-2", "Proceeding", ANA, caller)),
        (times[4], inbound("p-2", "Answered", ANA, caller)),
        (times[5], inbound("p-2", "Disconnected", ANA, caller, reason="CallFinished")),
    )


dana, eli = {"phoneNumber": DANA}, {"phoneNumber": ELI}

#: Every call (telephony session) of Acme's day, its notifications in delivery order.
SESSIONS: dict[str, list[bytes]] = {
    # 1. Ana calls Dana: four minutes.
    "answered": outbound("s-answered", ANA, DANA, ("09:00:00", "09:00:10", "09:04:10")),
    # 2. Bo's extension is not mapped: his direct line is his rep's phone.
    "unmapped": outbound("s-unmapped", BO, ELI, ("09:10:00", "09:10:08", "09:12:08")),
    # 3. Eli calls the Sales queue; it rings Ana and Cy; Cy answers, the queue hands over.
    "queue": call(
        "s-queue",
        ("09:20:00", inbound("p-q", "Proceeding", QUEUE, eli)),
        ("09:20:01", inbound("p-a", "Proceeding", ANA, eli)),
        ("09:20:01", inbound("p-c", "Proceeding", CY, eli)),
        ("09:20:09", inbound("p-c", "Answered", CY, eli)),
        ("09:20:09", inbound("p-a", "Disconnected", ANA, eli)),
        ("09:20:09", inbound("p-q", "Gone", QUEUE, eli)),
        ("09:25:09", inbound("p-c", "Disconnected", CY, eli, reason="CallFinished")),
    ),
    # 4. Dana calls Ana's direct line, forwarded to her mobile, where she answers.
    "forwarded": call(
        "s-forwarded",
        ("09:40:00", inbound("p-1", "Proceeding", ANA, dana)),
        ("09:40:01", party("p-2", "Proceeding", ANA, {"phoneNumber": ANA_MOBILE})),
        ("09:40:07", party("p-2", "Answered", ANA, {"phoneNumber": ANA_MOBILE})),
        ("09:40:07", inbound("p-1", "Answered", ANA, dana)),
        ("09:43:07", party("p-2", "Disconnected", ANA, {"phoneNumber": ANA_MOBILE}, reason="CallFinished")),
        ("09:43:07", inbound("p-1", "Disconnected", ANA, dana, reason="CallFinished")),
    ),
    # 5. Ana calls Dana, adds Fay (a three-way call); Fay leaves first, Dana last.
    "conference": call(
        "s-conference",
        ("10:00:00", party("p-1", "Setup", ANA, dana)),
        ("10:00:05", party("p-1", "Answered", ANA, dana)),
        ("10:02:00", party("p-2", "Setup", ANA, {"phoneNumber": FAY})),
        ("10:02:10", party("p-2", "Answered", ANA, {"phoneNumber": FAY})),
        ("10:06:00", party("p-2", "Disconnected", ANA, {"phoneNumber": FAY})),
        ("10:08:05", party("p-1", "Disconnected", ANA, dana, reason="CallFinished")),
    ),
    # 6. Ana puts Dana on hold for a minute and resumes: one call.
    "hold": call(
        "s-hold",
        ("10:30:00", party("p-1", "Setup", ANA, dana)),
        ("10:30:10", party("p-1", "Answered", ANA, dana)),
        ("10:32:00", party("p-1", "Hold", ANA, dana)),
        ("10:33:00", party("p-1", "Answered", ANA, dana)),
        ("10:35:10", party("p-1", "Disconnected", ANA, dana, reason="CallFinished")),
    ),
    # 7. Eli calls Ana, she parks the call, Cy picks it up from the park location.
    "parked": call(
        "s-parked",
        ("11:00:00", inbound("p-1", "Proceeding", ANA, eli)),
        ("11:00:05", inbound("p-1", "Answered", ANA, eli)),
        ("11:01:00", inbound("p-1", "Parked", ANA, eli, park={"id": "*801"})),
        ("11:01:30", inbound("p-2", "Answered", CY, eli)),
        ("11:01:30", inbound("p-1", "Gone", ANA, eli, reason="Pickup")),
        ("11:06:30", inbound("p-2", "Disconnected", CY, eli, reason="CallFinished")),
    ),
    # 8. Eli calls Ana, she does not pick up, he leaves a voicemail.
    "voicemail": call(
        "s-voicemail",
        ("11:30:00", inbound("p-1", "Proceeding", ANA, eli)),
        ("11:30:20", inbound("p-1", "VoiceMail", ANA, eli)),
        ("11:31:00", inbound("p-1", "Disconnected", ANA, eli, missedCall=True)),
    ),
    # 9. Ana dials Bo by his extension number (102): colleagues, no customer.
    "internal-short": call(
        "s-internal-short",
        ("12:00:00", party("p-1", "Setup", ANA, {**BO, "phoneNumber": "102"})),
        (
            "12:00:01",
            inbound("p-2", "Proceeding", {**BO, "phoneNumber": "102"}, {**ANA, "phoneNumber": "101"}),
        ),
        ("12:00:04", inbound("p-2", "Answered", {**BO, "phoneNumber": "102"}, {**ANA, "phoneNumber": "101"})),
        ("12:00:04", party("p-1", "Answered", ANA, {**BO, "phoneNumber": "102"})),
        ("12:02:04", party("p-1", "Disconnected", ANA, {**BO, "phoneNumber": "102"})),
        (
            "12:02:04",
            inbound("p-2", "Disconnected", {**BO, "phoneNumber": "102"}, {**ANA, "phoneNumber": "101"}),
        ),
    ),
    # 10. Ana calls Bo's direct number: colleagues too.
    "internal-direct": call(
        "s-internal-direct",
        ("12:10:00", party("p-1", "Setup", ANA, BO)),
        ("12:10:01", inbound("p-2", "Proceeding", BO, ANA)),
        ("12:10:05", inbound("p-2", "Answered", BO, ANA)),
        ("12:10:05", party("p-1", "Answered", ANA, BO)),
        ("12:11:05", party("p-1", "Disconnected", ANA, BO)),
        ("12:11:05", inbound("p-2", "Disconnected", BO, ANA)),
    ),
    # 11. A caller who withholds the number ("anonymous") reaches Ana.
    "withheld": call(
        "s-withheld",
        ("12:30:00", inbound("p-1", "Proceeding", ANA, {"phoneNumber": "anonymous"})),
        ("12:30:05", inbound("p-1", "Answered", ANA, {"phoneNumber": "anonymous"})),
        ("12:31:05", inbound("p-1", "Disconnected", ANA, {"phoneNumber": "anonymous"})),
    ),
    # 12. Withheld with no number at all, only a name.
    "withheld-nameonly": call(
        "s-withheld-2",
        ("12:40:00", inbound("p-1", "Proceeding", ANA, {"name": "Anonymous"})),
        ("12:40:05", inbound("p-1", "Answered", ANA, {"name": "Anonymous"})),
        ("12:40:50", inbound("p-1", "Disconnected", ANA, {"name": "Anonymous"})),
    ),
    # 13. The account-level subscription and Ana's extension-level one both deliver each
    #     notification (another uuid, subscriptionId and event): counted once.
    "two-subscriptions": [
        copy
        for body in outbound("s-two-subs", ANA, DANA, ("13:00:00", "13:00:06", "13:03:26"))
        for copy in (
            body,
            body.replace(ACCOUNT_EVENT.encode(), ANA_EVENT.encode()).replace(b"sub-account", b"sub-ana"),
        )
    ],
    # 14. A very long call: 3 h 20 min.
    "long": outbound("s-long", ANA, ELI, ("14:00:00", "14:00:10", "17:20:10")),
    # 15. The hang-up delivered before the answer (sequence 4 before 3).
    "out-of-order": [
        outbound("s-out-of-order", ANA, FAY, ("18:00:00", "18:00:12", "18:02:42"))[i] for i in (0, 1, 3, 2)
    ],
    # 16. The hang-up delivered first of all.
    "hangup-first": [
        outbound("s-hangup-first", ANA, DANA, ("19:00:00", "19:00:10", "19:01:40"))[i] for i in (3, 0, 1, 2)
    ],
    # 17. Dana calls the main number: the auto-receptionist (IVR) answers, she hangs up in it.
    "ivr-only": call(
        "s-ivr-only",
        ("19:30:00", inbound("p-1", "Proceeding", IVR, dana)),
        ("19:30:01", inbound("p-1", "Answered", IVR, dana)),
        ("19:30:40", inbound("p-1", "Disconnected", IVR, dana, reason="CallFinished")),
    ),
    # 18. Eli calls the main number, presses 1 for Ana in the IVR menu, talks 5 minutes.
    "ivr-routed": routed_to_ana(
        "s-ivr-routed",
        eli,
        ("20:00:00", "20:00:01", "20:00:15", "20:00:16", "20:00:25", "20:05:25"),
        "CallerInputRedirect",
    ),
    # 19. Eli calls Bo, who misses it.
    "missed": call(
        "s-missed",
        ("20:30:00", inbound("p-1", "Proceeding", BO, eli)),
        ("20:30:25", inbound("p-1", "Disconnected", BO, eli, missedCall=True)),
    ),
    # 20. Ana calls Eli, who is busy.
    "busy": call(
        "s-busy",
        ("21:00:00", party("p-1", "Setup", ANA, eli)),
        ("21:00:03", party("p-1", "Disconnected", ANA, eli, reason="TargetBusy")),
    ),
    # 21. Dana calls the main number, presses nothing; on its timeout the menu routes her to Ana
    #     (no CallerInputRedirect), who answers 10 s later and talks 4 minutes.
    "ivr-timeout": routed_to_ana(
        "s-ivr-timeout", dana, ("21:10:00", "21:10:01", "21:10:20", "21:10:21", "21:10:30", "21:14:30")
    ),
    # 22. Eli calls the Sales queue, which answers with its greeting and hold music; Cy picks up
    #     a minute later and talks 3 minutes.
    "queue-greeting": call(
        "s-queue-greeting",
        ("21:30:00", inbound("p-q", "Proceeding", QUEUE, eli)),
        ("21:30:01", inbound("p-q", "Answered", QUEUE, eli)),
        ("21:30:02", inbound("p-c", "Proceeding", CY, eli)),
        ("21:31:00", inbound("p-c", "Answered", CY, eli)),
        ("21:31:00", inbound("p-q", "Gone", QUEUE, eli)),
        ("21:34:00", inbound("p-c", "Disconnected", CY, eli, reason="CallFinished")),
    ),
    # 23. Eli calls the Sales queue and gives up on the hold music after 90 s.
    "queue-abandoned": call(
        "s-queue-abandoned",
        ("21:40:00", inbound("p-q", "Proceeding", QUEUE, eli)),
        ("21:40:01", inbound("p-q", "Answered", QUEUE, eli)),
        ("21:41:31", inbound("p-q", "Disconnected", QUEUE, eli, reason="CallFinished")),
    ),
}
EXTERNAL_IDS = {
    name: "s-withheld-2"
    if name == "withheld-nameonly"
    else "s-two-subs"
    if name == "two-subscriptions"
    else f"s-{name}"
    for name in SESSIONS
}

#: name -> (status, rep, deal, contacts, direction, outcome, duration, dials, connects, talk),
#: as a careful human labels each call (written before the first run).
TRUTH: dict[str, tuple[Any, ...]] = {
    "answered": ("attributed", "rep-ana", "deal-1", ["con-dana"], "outbound", "connected", 240, 1, 1, 240),
    "unmapped": ("attributed", "rep-bo", "deal-2", ["con-eli"], "outbound", "connected", 120, 1, 1, 120),
    "queue": ("attributed", "rep-cy", "deal-2", ["con-eli"], "inbound", "connected", 300, 0, 0, 300),
    "forwarded": ("attributed", "rep-ana", "deal-1", ["con-dana"], "inbound", "connected", 180, 0, 0, 180),
    "conference": (
        "attributed",
        "rep-ana",
        "deal-1",
        ["con-dana", "con-fay"],
        "outbound",
        "connected",
        480,
        1,
        1,
        480,
    ),
    # Talk from the answer to the hang-up, the minute on hold included (as every source's).
    "hold": ("attributed", "rep-ana", "deal-1", ["con-dana"], "outbound", "connected", 300, 1, 1, 300),
    # Cy took the call after Ana parked it: his, as a transferred call is the one who took it.
    "parked": ("attributed", "rep-cy", "deal-2", ["con-eli"], "inbound", "connected", 385, 0, 0, 385),
    "voicemail": ("attributed", "rep-ana", "deal-2", ["con-eli"], "inbound", "voicemail", 0, 0, 0, 0),
    # Colleagues: counted nowhere (labelled "outbound, counts nothing"; direction internal is how
    # every source tells a call among colleagues, which metrics leave out).
    "internal-short": ("internal", "rep-ana", None, [], "internal", "connected", 120, 0, 0, 0),
    "internal-direct": ("internal", "rep-ana", None, [], "internal", "connected", 60, 0, 0, 0),
    "withheld": ("unmatched", "rep-ana", None, [], "inbound", "connected", 60, 0, 0, 60),
    "withheld-nameonly": ("unmatched", "rep-ana", None, [], "inbound", "connected", 45, 0, 0, 45),
    "two-subscriptions": (
        "attributed",
        "rep-ana",
        "deal-1",
        ["con-dana"],
        "outbound",
        "connected",
        200,
        1,
        1,
        200,
    ),
    "long": ("attributed", "rep-ana", "deal-2", ["con-eli"], "outbound", "connected", 12000, 1, 1, 12000),
    "out-of-order": ("attributed", "rep-ana", "deal-1", ["con-fay"], "outbound", "connected", 150, 1, 1, 150),
    "hangup-first": ("attributed", "rep-ana", "deal-1", ["con-dana"], "outbound", "connected", 90, 1, 1, 90),
    # Nobody but the menu answered: no rep talked to Dana (the tenant lists the menu's extension
    # in ``menu_extensions``: nothing in a notification says a party is an IVR).
    "ivr-only": ("unmatched", None, None, ["con-dana"], "inbound", "no_answer", 0, 0, 0, 0),
    # Ana's talk only, from her answer: the menu's 15 s are no conversation.
    "ivr-routed": ("attributed", "rep-ana", "deal-2", ["con-eli"], "inbound", "connected", 300, 0, 0, 300),
    "missed": ("attributed", "rep-bo", "deal-2", ["con-eli"], "inbound", "no_answer", 0, 0, 0, 0),
    "busy": ("attributed", "rep-ana", "deal-2", ["con-eli"], "outbound", "busy", 0, 1, 0, 0),
    # Ana's talk from her answer: the menu's 29 s before it (no key press) are no conversation.
    "ivr-timeout": ("attributed", "rep-ana", "deal-1", ["con-dana"], "inbound", "connected", 240, 0, 0, 240),
    # Cy's talk from his answer: the minute of greeting and hold music is no conversation.
    "queue-greeting": ("attributed", "rep-cy", "deal-2", ["con-eli"], "inbound", "connected", 180, 0, 0, 180),
    # Nobody but the queue's recording answered, as the menu-only call.
    "queue-abandoned": ("unmatched", None, None, ["con-eli"], "inbound", "no_answer", 0, 0, 0, 0),
}
#: What the calls left open read instead of their truth: counted as labelled (not connected,
#: no talk, no conversation), but credited to the caller's deal's owner, as every activity
#: nobody on the seller's side is known in (``_choose_rep``: "an activity credited to nobody is
#: lost to metrics"; a missed call to a shared line the same). Whether a call that reached no
#: person should be nobody's is a rule of attribution's, not of the menu's.
KNOWN_LIMITS: dict[str, tuple[Any, ...]] = {
    "ivr-only": ("attributed", "rep-ana", "deal-1", ["con-dana"], "inbound", "no_answer", 0, 0, 0, 0),
    "queue-abandoned": ("attributed", "rep-bo", "deal-2", ["con-eli"], "inbound", "no_answer", 0, 0, 0, 0),
}
#: The tenant's menus as its admin lists them (``PATCH /v1/settings/organization``): the
#: auto-receptionist and the Sales queue.
MENUS = [IVR_EXT, QUEUE_EXT]


async def _read(stack: Any, engine: AsyncEngine, tenant: Tenant) -> dict[str, tuple[Any, ...]]:
    """Each session as the gateway lists it, with its contacts and counts as metrics holds them."""
    names = {str(activity_id_for(TENANT, "ringcentral", e)): n for n, e in EXTERNAL_IDS.items()}
    listed = await get(stack, tenant, "/v1/activities?limit=100")
    async with engine.connect() as conn:
        counted = {
            str(r.activity_id): r
            for r in await conn.execute(
                text(
                    "SELECT activity_id, contact_ids, dials, connects, talk_seconds FROM metric_contributions "
                    "WHERE tenant_id = :t"
                ),
                {"t": TENANT},
            )
        }
    found = {}
    for a in listed["items"]:
        if a["activity_id"] not in names:
            continue
        row = counted.get(a["activity_id"])
        figures = (
            (sorted(row.contact_ids or []), row.dials, row.connects, row.talk_seconds)
            if row
            else ([], 0, 0, 0)
        )
        head = (a["status"], a["rep_id"], a["deal_id"])
        found[names[a["activity_id"]]] = (
            *head,
            figures[0],
            a["direction"],
            a["outcome"],
            a["duration_seconds"],
            *figures[1:],
        )
    return found


async def test_a_ringcentral_admins_day_is_counted_as_a_human_labels_it(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    acme = await webhook_tenant(db_engine, SETTINGS)
    async with db_engine.begin() as conn:
        made = await create_tenant(conn, "umbrella", TEST_SECRET_KEY)
    umbrella_token = made["webhook_secrets"]["ringcentral"]  # type: ignore[index]
    umbrella_keys: dict[str, str] = made["api_keys"]  # type: ignore[assignment]
    umbrella = tenant_of("umbrella", umbrella_keys)
    # Umbrella's desk phone has the extension id Acme's menu has: Zed's, no menu of Umbrella's.
    await configure(
        db_engine,
        umbrella,
        {"default_phone_region": "US", "rep_aliases": {"70001": "rep-zed", IVR_EXT: "rep-zed"}},
    )
    zed = {"phoneNumber": "+13125550101", "name": "Zed", "extensionId": "70001"}
    zed_desk = {"phoneNumber": "+13125550102", "name": "Zed (desk)", "extensionId": IVR_EXT}
    buyer = {"phoneNumber": "+13125550199"}
    # Umbrella's calls carry the same telephonySessionIds as Acme's first and menu-only calls.
    umbrella_calls = [
        *outbound("s-answered", zed, "+13125550199", ("09:00:00", "09:00:05", "09:01:05")),
        note("s-ivr-only", 1, "19:30:00", inbound("p-1", "Proceeding", zed_desk, buyer)),
        note("s-ivr-only", 2, "19:30:02", inbound("p-1", "Answered", zed_desk, buyer)),
        note(
            "s-ivr-only",
            3,
            "19:30:32",
            inbound("p-1", "Disconnected", zed_desk, buyer, reason="CallFinished"),
        ),
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        # The admin lists Acme's menus before wiring RingCentral (the setting applies to the
        # calls that finish after it; no job).
        listed = await stack.gateway.patch(
            "/v1/settings/organization", json={"menu_extensions": MENUS}, headers=acme.admin
        )
        assert listed.status_code == 200, listed.text
        assert (listed.json()["settings"]["menu_extensions"], listed.json()["jobs"]) == (MENUS, [])
        roster = [{"updated_at": "2026-10-01T00:00:00Z", **e} for e in ROSTER]
        synced = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "hr", "entities": roster}, headers=acme.ingest
        )
        assert synced.status_code == 202, synced.text
        zed_rep = [
            {
                "entity_type": "rep",
                "id": "rep-zed",
                "name": "Zed",
                "phones": [zed["phoneNumber"]],
                "updated_at": "2026-10-01T00:00:00Z",
            }
        ]
        synced = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "hr", "entities": zed_rep}, headers=umbrella.ingest
        )
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, TENANT, roster)
        await references_landed(db_engine, "umbrella", zed_rep)
        # The subscription's validation request, on creation and again on renewal, for each tenant.
        handshakes = []
        for tenant_id, token in (
            ("acme", "7c1e0f4a-create"),
            ("acme", "9d2f1b5c-renew"),
            ("umbrella", "u-1"),
        ):
            answer = await stack.ingest.post(
                f"/v1/webhooks/ringcentral/{tenant_id}", content=b"", headers={"Validation-Token": token}
            )
            handshakes.append((answer.status_code, answer.headers.get("validation-token")))
        # Acme's notification sent with Umbrella's token (and the reverse) is refused.
        crossed = [
            await stack.ingest.post(
                f"/v1/webhooks/ringcentral/{tenant_id}",
                content=SESSIONS["answered"][0],
                headers={"content-type": "application/json", "verification-token": token},
            )
            for tenant_id, token in (("acme", umbrella_token), ("umbrella", SECRETS["ringcentral"][0]))
        ]
        answers = {
            name: [await _deliver(stack, "ringcentral", body) for body in bodies]
            for name, bodies in SESSIONS.items()
        }
        for body in umbrella_calls:
            delivered = await stack.ingest.post(
                "/v1/webhooks/ringcentral/umbrella",
                content=body,
                headers={"content-type": "application/json", "verification-token": umbrella_token},
            )
            assert delivered.status_code == 200, delivered.text
        await settle(kafka_settings)
        found = await _read(stack, db_engine, acme)
        counts = ("dials", "connects", "conversations", "talk_seconds")
        scores = await _november(stack, acme, *counts, reps=("rep-ana", "rep-bo", "rep-cy"))
        theirs = await get(stack, umbrella, "/v1/activities?limit=100")
        zed_scores = await _november(stack, umbrella, *counts, reps=("rep-zed",))
    assert handshakes == [(200, "7c1e0f4a-create"), (200, "9d2f1b5c-renew"), (200, "u-1")]
    assert [(r.status_code, r.json()["errors"]) for r in crossed] == [
        (401, [{"in": "header", "field": "verification-token", "reason": "does not match"}])
    ] * 2
    assert [a["ignored"] for answer in answers.values() for a in answer if a["ignored"]] == []
    assert found == {**TRUTH, **KNOWN_LIMITS}
    assert sum(found[name] == truth for name, truth in TRUTH.items()) == 21
    # Every call counted as labelled: direction, outcome, length, dials, connects, talk.
    assert {name: read[4:] for name, read in found.items()} == {name: t[4:] for name, t in TRUTH.items()}
    # Ana: 8 dials, 7 connects (the busy call none), 7 conversations (outbound, 60 s or more),
    # 14,285 s of talk: 14,045 s and the 240 s from her answer of the call the menu routed on
    # its timeout (the menu-only call's 39 s and the menu's 29 s are nobody's talk). Cy: 865 s,
    # the queue's minute of hold music not among them.
    assert scores == {"rep-ana": (8, 7, 7, 14285), "rep-bo": (1, 1, 1, 120), "rep-cy": (0, 0, 0, 865)}
    # Umbrella lists no menu: its desk phone on the same extension id answered, Zed's 30 s.
    assert sorted((a["rep_id"], a["outcome"], a["duration_seconds"]) for a in theirs["items"]) == [
        ("rep-zed", "connected", 30),
        ("rep-zed", "connected", 60),
    ]
    assert zed_scores == {"rep-zed": (1, 1, 1, 90)}
