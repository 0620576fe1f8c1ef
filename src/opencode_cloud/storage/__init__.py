"""Safe storage for occ's own files: atomic, locked, private."""
