"""The mosaic engine: quality expressions, the per-pixel method, grids, reads, scheduling."""
