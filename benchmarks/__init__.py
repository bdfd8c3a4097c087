"""Offline benchmarks of nbsweep's search and early termination against the peers.

``python -m benchmarks.run`` runs the full comparison and rewrites ``docs/benchmarks.md``;
``--quick`` is the few-minute version. Peers run in their own virtual environments under
``.bench/`` (created on first use) and talk to the harness over JSON lines.
"""
