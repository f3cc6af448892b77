"""Security tier: authentication, scopes, webhook signatures, secrets in logs, hostile input."""
