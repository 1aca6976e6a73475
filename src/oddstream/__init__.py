"""oddstream: an event-sourced betting platform."""

__version__ = "0.1.0"
