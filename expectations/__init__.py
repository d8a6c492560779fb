"""Expectations: Great Expectations suites and the checkpoint that guards the warehouse."""
