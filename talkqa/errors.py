"""Errors a user sees as one line (exit 2), never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or usage: the message says what, where, and what to do."""

    exit_code = 2
