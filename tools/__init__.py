"""Developer tools of talk-qa (not shipped): run as ``python -m tools.<name>``."""
