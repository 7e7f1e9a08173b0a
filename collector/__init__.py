"""The Rampart collector: verified ingest, storage, the compliance API, cloud checks, reports."""
