"""Release and packaging helpers (not part of the installed package)."""
