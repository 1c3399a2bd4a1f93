"""Connectors to the vendor APIs: one module per vendor, one shared resource contract."""
