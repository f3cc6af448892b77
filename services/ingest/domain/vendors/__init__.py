"""One adapter per vendor; each verifies and parses that vendor's documented webhook shapes."""
