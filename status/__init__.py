"""Siaran: status service for the e-Meterai stamp and the post-office branches that sell it."""

__version__ = "0.1.0"
