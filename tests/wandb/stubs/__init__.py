"""Packages the seed documents import that this machine lacks, for the seed scripts only.

This folder is put on the ``PYTHONPATH`` of the scripts tests/wandb/test_seeds.py runs (and
of their agents), never on the tests' own path.
"""
