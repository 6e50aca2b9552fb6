"""bags sub-package."""
