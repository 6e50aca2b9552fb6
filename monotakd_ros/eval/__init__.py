"""eval sub-package."""
