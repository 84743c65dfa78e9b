"""Online shop backend."""
