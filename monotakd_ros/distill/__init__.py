"""distill sub-package."""
