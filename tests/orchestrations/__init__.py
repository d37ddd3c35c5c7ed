"""Orchestrations of our own that behave like the ones that produced the fixtures."""
