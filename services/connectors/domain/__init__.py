"""Pure rules of the connectors: what to fetch, what to forward, when to retry."""
