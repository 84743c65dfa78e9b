"""Orders ("transactions"): their table, the one lifecycle, user and staff routes, the
payment provider's webhook."""
