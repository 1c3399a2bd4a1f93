"""The compact reference sync: the default system under test of talk-qa.

It reads a Dataflow checklist (``DataflowSpec``) and keeps the bound vendor collections in
sync through the ``talkqa.systems`` Resource contract. Public surface: ``run_sync``,
``LinkStore``, ``SyncSummary``.
"""

from reference_sync.engine import run_sync
from reference_sync.linkstore import LinkStore
from reference_sync.summary import SyncSummary

__all__ = ["LinkStore", "SyncSummary", "run_sync"]
