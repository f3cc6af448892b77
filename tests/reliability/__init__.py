"""Reliability tier: faults injected into real service processes, totals checked exactly."""
