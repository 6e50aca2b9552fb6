"""geometry sub-package."""
