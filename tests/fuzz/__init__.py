"""Hardening runs (fuzz, load) and their helpers; see README.md here."""
