"""Deliberately broken syncers: the reference sync with one named fault each.

``python -m defects NAME`` runs one; ``defects.catalogue.CATALOGUE`` lists them as data.
"""

from defects.catalogue import CATALOGUE, CONTROL, EVERYTHING, Defect, Injection, find

__all__ = ["CATALOGUE", "CONTROL", "EVERYTHING", "Defect", "Injection", "find"]
