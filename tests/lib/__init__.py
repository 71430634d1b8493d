"""Helpers shared by the test tiers (no tests here: nothing matches test_*.py)."""
