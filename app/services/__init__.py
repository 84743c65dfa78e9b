"""Services the domains share that are not a domain themselves (email)."""
