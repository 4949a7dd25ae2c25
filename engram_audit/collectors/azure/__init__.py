"""Azure Resource Manager collector. Import ``collector`` for the SDK-backed parts; ``request``
holds what the CLI needs without importing the Azure SDK."""
