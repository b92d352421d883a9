"""qualitymosaic: exact per-pixel quality mosaics as dynamic map tiles."""

__version__ = "0.1.0"
