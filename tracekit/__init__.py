"""tracekit: make a Linux box traceable, and prove it."""

__version__ = "0.1.0"
