"""The plugin contract: hooks, registry, plugin loader, typed options, and the base classes plugins subclass."""
