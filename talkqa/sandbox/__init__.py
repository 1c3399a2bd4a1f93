"""Local, deterministic, fault-injectable emulators of the Chargebee and Invoiced APIs.

An independent model of the vendors: it never imports `talkqa.systems` or `reference_sync`,
so a bug shared by our client and our emulator cannot hide itself.
"""
