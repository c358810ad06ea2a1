"""Test helpers for the whole suite, loaded as a pytest plugin (root conftest.py); never imported
by production code."""
