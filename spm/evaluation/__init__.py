"""Accuracy harnesses run by ``spm eval``: labelled synthetic worlds scored on the production code path."""
