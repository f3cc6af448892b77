"""The canonical-meeting choice, a pure rule: which activity one meeting seen from several sources is."""

from __future__ import annotations

import uuid

from services.ingest.domain.meetings import MeetingSighting, RecordedKey, choose_canonical_meetings

CAL, ZOOM, ZOOM_2 = (uuid.uuid5(uuid.NAMESPACE_URL, n) for n in ("calendar", "zoom", "zoom-2"))


def test_a_first_sighting_is_its_own_meeting_and_records_its_keys() -> None:
    canonical, new = choose_canonical_meetings(
        [MeetingSighting(CAL, "google-calendar", ("ical:u1", "slot:a"))], []
    )
    assert canonical == {CAL: CAL}
    assert new == {
        k: RecordedKey(CAL, "google-calendar", CAL) for k in ("ical:u1", "slot:a", f"object:{CAL}")
    }


def test_another_sources_sighting_under_a_known_key_is_the_same_meeting() -> None:
    recorded = [("slot:a", RecordedKey(CAL, "google-calendar", CAL))]
    canonical, new = choose_canonical_meetings([MeetingSighting(ZOOM, "zoom", ("slot:a",))], recorded)
    assert canonical == {ZOOM: CAL}
    assert new == {f"object:{ZOOM}": RecordedKey(CAL, "zoom", ZOOM)}


def test_one_sources_two_events_in_one_slot_stay_two_meetings() -> None:
    recorded = [("slot:a", RecordedKey(ZOOM, "zoom", ZOOM))]
    canonical, new = choose_canonical_meetings([MeetingSighting(ZOOM_2, "zoom", ("slot:a",))], recorded)
    assert canonical == {ZOOM_2: ZOOM_2}
    assert list(new) == [f"object:{ZOOM_2}"]


def test_an_object_keeps_the_id_it_was_first_published_under() -> None:
    recorded = [
        ("slot:a", RecordedKey(CAL, "google-calendar", CAL)),
        (f"object:{ZOOM}", RecordedKey(CAL, "zoom", ZOOM)),
    ]
    # Moved to another slot since: still the calendar's meeting, and the new slot is recorded for it.
    canonical, new = choose_canonical_meetings([MeetingSighting(ZOOM, "zoom", ("slot:b",))], recorded)
    assert canonical == {ZOOM: CAL}
    assert new == {"slot:b": RecordedKey(CAL, "zoom", ZOOM)}


def test_the_ical_key_is_tried_before_the_slot() -> None:
    other = uuid.uuid5(uuid.NAMESPACE_URL, "outlook")
    recorded = [
        ("slot:a", RecordedKey(other, "microsoft-graph", other)),
        ("ical:u1", RecordedKey(CAL, "google-calendar", CAL)),
    ]
    canonical, _ = choose_canonical_meetings([MeetingSighting(ZOOM, "zoom", ("ical:u1", "slot:a"))], recorded)
    assert canonical == {ZOOM: CAL}


def test_one_sources_two_copies_under_one_uid_are_one_meeting() -> None:
    """Graph keeps a copy of a meeting in each attendee's mailbox under its own id: the UID
    joins them; a slot alone does not (a double booking stays two)."""
    recorded = [("ical:u1:2026-11-24", RecordedKey(ZOOM, "microsoft-graph", ZOOM))]
    canonical, new = choose_canonical_meetings(
        [MeetingSighting(ZOOM_2, "microsoft-graph", ("ical:u1:2026-11-24", "slot:b"))], recorded
    )
    assert canonical == {ZOOM_2: ZOOM}
    assert new == {k: RecordedKey(ZOOM, "microsoft-graph", ZOOM_2) for k in ("slot:b", f"object:{ZOOM_2}")}
