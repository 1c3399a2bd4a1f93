"""talk-qa: turns Sesam Talk dataflow checklists into executable checks of a data sync.

PYTEST_DONT_REWRITE: `talkqa signoff` has imported this package when its feature suite loads
the plugin `-p talkqa`; pytest would warn that it cannot rewrite it (nothing here asserts).
"""

__version__ = "0.1.0"
