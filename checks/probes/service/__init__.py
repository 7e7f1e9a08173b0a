"""service: a service's state (installed, running, started at boot)."""
