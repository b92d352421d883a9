"""Offline tools: the demo collection generator and the COG indexer."""
