"""Integration tests of the shared plumbing: poison messages, the DLQ tool."""
