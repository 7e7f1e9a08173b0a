"""Microsoft Secure Score: the latest value and its trend."""
