"""Kafka plumbing: producer and admin factories, and the consumer runner."""
