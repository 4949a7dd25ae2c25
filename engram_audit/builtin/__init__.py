"""Data shipped with the package: the policies (the repository's policies/, linked, not copied)."""
