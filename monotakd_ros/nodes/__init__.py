"""nodes sub-package."""
