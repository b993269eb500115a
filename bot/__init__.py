"""The service shell: config, web app, platform adapters, CLI, worker. No business rules."""
