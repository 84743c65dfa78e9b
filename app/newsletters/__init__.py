"""Newsletters: staff-written campaigns to opted-in users, and one-click unsubscribe."""
