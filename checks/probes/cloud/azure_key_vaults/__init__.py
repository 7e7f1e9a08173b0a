"""Azure Key Vault recovery settings: soft delete, purge protection, the access model."""
