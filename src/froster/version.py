"""The package version, alone in a leaf module so that anything can import it."""

__version__ = "0.1.0"
