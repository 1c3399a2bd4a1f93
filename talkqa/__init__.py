"""talk-qa: turns Sesam Talk dataflow checklists into executable checks of a data sync."""

__version__ = "0.1.0"
