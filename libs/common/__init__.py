"""Shared plumbing and contracts for the SPM services.

Nothing here holds a business rule: settings groups, the event envelope and the
versioned payload models, the topic registry, the Kafka runner, the database engine
and migrations, logging, Prometheus helpers and health routes.
"""
