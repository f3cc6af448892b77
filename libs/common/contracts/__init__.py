"""Versioned event and payload contracts shared by the services.

Changes inside a version are additive only; a breaking change is a new ``V2`` model
and a new event type. The exported JSON Schemas under ``schemas/`` are checked by a test.
"""
