"""Ragged text arrays as statement parameters.

A statement that writes many rows takes one array per column and ``unnest``s them; a ``text[]``
column would then need an array of arrays, which PostgreSQL holds rectangular only. Each row's
array travels instead as one array literal (an element of a ``text[]`` parameter), turned back
into its array in SQL by ``CAST(u.column AS text[])``: PostgreSQL's array input, without building
and unpacking a JSON value per row.
"""

from __future__ import annotations

from collections.abc import Iterable

#: A tuple, not ``list | tuple``: that union is built anew at every evaluation (about 900
#: instructions with the check; a tuple's check about 250), and this runs per row.
_SEQUENCES = (list, tuple)


def text_array_literal(values: Iterable[str]) -> str:
    """``values`` as a PostgreSQL array literal: each element quoted, ``\\`` and ``"`` escaped, so
    any text (commas, braces, spaces, the word NULL) comes back unchanged."""
    if not isinstance(values, _SEQUENCES):
        values = list(values)
    if not values:
        return "{}"
    flat = "".join(values)
    if "\\" in flat or '"' in flat:  # rare: escape each element
        values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
    return '{"' + '","'.join(values) + '"}'
