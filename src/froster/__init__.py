"""froster: open-vocabulary video action recognition with FROSTER."""

__version__ = "0.1.0"
