"""marketpilot: the AI and automation layer of an online marketplace."""

__version__ = "0.1.0"
