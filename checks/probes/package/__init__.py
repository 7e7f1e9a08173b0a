"""package: whether a package is installed, and its version."""
