"""Built-in plugins of mtl, one module per plugin, registered exactly like third-party ones."""
