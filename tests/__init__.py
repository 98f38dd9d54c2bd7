"""tgs3bot test suite."""
