"""The ``spm`` command: the composition root that starts services, the local stack and tools."""
