"""Catalogues: what a collection is, how requests filter it, and where its items live."""
