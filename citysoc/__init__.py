"""citysoc: the CLI and the wiring. The only package that picks concrete implementations."""
__version__ = "0.1.0"
