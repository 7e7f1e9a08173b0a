"""Transparent data encryption of each Azure SQL database."""
