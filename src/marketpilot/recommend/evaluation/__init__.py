"""Offline evaluation of recommenders: splitting protocols, top-k metrics, the CLI command."""
