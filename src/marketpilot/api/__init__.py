"""The HTTP adapter: parse, authorise, call a service, serialise."""

from marketpilot.api.app import create_app

__all__ = ["create_app"]
