"""``tiler export``: the quality mosaic of a region of any size, in chunks on Dask.

The region's output grid (:mod:`tiler.export.grid`) is cut into chunks aligned to the
output's internal tiles; each chunk is a Dask task (:mod:`tiler.export.chunks`) that opens
the catalogue itself, searches it for its own footprint and runs the engine on exactly its
sub-window of the grid. The client writes each chunk as it finishes into a folder of parts
with a manifest (:mod:`tiler.export.parts`), so an interrupted export resumes where it
stopped, then assembles the parts into a Cloud Optimized GeoTIFF (:mod:`tiler.export.cog`).
:mod:`tiler.export.run` plans and drives an export.
"""
