"""process: running processes with a given name, or whose command line matches a pattern."""
