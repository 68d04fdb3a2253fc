"""The package version (one place; records and reports name it)."""

__version__ = "0.2.0"
