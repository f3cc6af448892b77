"""Pure attribution rules: which rep, team, account and deal an activity belongs to.

Nothing here performs I/O. The consumer loads an ``AttributionSnapshot`` for one activity
and calls ``attribute_activity``; the result is versioned by ``next_version``.
"""
