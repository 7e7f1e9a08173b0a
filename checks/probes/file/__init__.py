"""file: a file's existence, type, owner, group and permission bits (and optionally its SHA-256)."""
