"""Fakes of services the tests cannot reach (Microsoft's). Each speaks the real protocol."""
