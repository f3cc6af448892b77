"""The one rule for who attends a meeting once someone declined (``libs.common.calendar_attendance``),
shared by ingest (a calendar's answers) and attribution (a meeting removed from a calendar)."""

from __future__ import annotations

from libs.common.calendar_attendance import meeting_attendance
from libs.common.contracts.activities import Participant, ParticipantRole, ResponseStatus

BOB = Participant(email="bob@acme.example", role=ParticipantRole.ORGANIZER)
BOB_DECLINED = BOB.model_copy(update={"response_status": ResponseStatus.DECLINED})
BUYER_HOST = Participant(email="bo@globex.example", role=ParticipantRole.ORGANIZER)
ANA = Participant(email="ana@acme.example", role=ParticipantRole.ATTENDEE)
ANA_DECLINED = ANA.model_copy(update={"response_status": ResponseStatus.DECLINED})
BUYER = Participant(email="bo@globex.example", role=ParticipantRole.ATTENDEE)
BUYER_DECLINED = BUYER.model_copy(update={"response_status": ResponseStatus.DECLINED})
BEA_DECLINED = Participant(
    email="bea@globex.example", role=ParticipantRole.ATTENDEE, response_status=ResponseStatus.DECLINED
)


def test_two_still_attending_is_a_meeting_of_whom_it_lists_in_order() -> None:
    # A declined guest the caller lists (a stored meeting) stays listed, and counts for nobody.
    assert meeting_attendance((BUYER, BEA_DECLINED, BOB), (ANA_DECLINED,), BOB, organizer_internal=True) == (
        (BUYER, BEA_DECLINED, BOB),
        False,
    )
    # The organizer who declined keeps her place, and two guests still attend.
    assert meeting_attendance((BOB_DECLINED, ANA, BUYER), (), BOB_DECLINED, organizer_internal=True) == (
        (BOB_DECLINED, ANA, BUYER),
        False,
    )


def test_fewer_than_two_attending_because_someone_declined_is_called_off() -> None:
    # Every guest declined: an internal organizer is listed with them.
    assert meeting_attendance((BOB,), (BUYER_DECLINED,), BOB, organizer_internal=True) == (
        (BOB, BUYER_DECLINED),
        True,
    )
    assert meeting_attendance((BOB,), (ANA_DECLINED, BEA_DECLINED), BOB, organizer_internal=True) == (
        (BOB, ANA_DECLINED, BEA_DECLINED),
        True,
    )
    # The rep a buyer invited declined: the external organizer, left attending alone, is not listed.
    assert meeting_attendance((BUYER_HOST,), (ANA_DECLINED,), BUYER_HOST, organizer_internal=False) == (
        (ANA_DECLINED,),
        True,
    )
    # The organizer declining leaves one guest, left out: called off without a guest's refusal.
    assert meeting_attendance((BOB_DECLINED, BUYER), (), BOB_DECLINED, organizer_internal=False) == (
        (BOB_DECLINED,),
        True,
    )


def test_nobody_declining_or_the_organizer_declining_her_own_time_is_time_blocked() -> None:
    assert meeting_attendance((BOB,), (), BOB, organizer_internal=True) is None
    assert meeting_attendance((BOB_DECLINED,), (), BOB_DECLINED, organizer_internal=True) is None
    assert meeting_attendance((), (), None, organizer_internal=False) is None


def test_nobody_is_merged_here_callers_list_each_person_once() -> None:
    assert meeting_attendance((BOB,), (BEA_DECLINED, BEA_DECLINED), BOB, organizer_internal=False) == (
        (BEA_DECLINED, BEA_DECLINED),
        True,
    )
