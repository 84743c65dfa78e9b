"""Shared vocabulary of the service: enums with no logic."""
