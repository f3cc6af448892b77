"""Test fixtures shared by the suite: embedded engines, per-test databases and topics."""
