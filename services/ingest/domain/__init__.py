"""Pure rules of the ingest service: vendor webhook verification, parsing and normalisation, privacy."""
