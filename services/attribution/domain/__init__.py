"""Pure attribution rules: which rep, team, account and deal an activity belongs to.

Nothing here performs I/O. The consumer loads a batch's ``ReferenceIndex`` and decides each
activity with ``reference_index.attribute_from_index`` (the rules of ``matching`` on the slice
the activity points at; ``attribute_activity`` takes that slice as an ``AttributionSnapshot``);
the result is versioned by ``next_version``.
"""
