"""Checklist documents: the typed spec, the RST reader, and the Gherkin generator."""
