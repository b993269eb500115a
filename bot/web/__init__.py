"""The web app: webhooks, the /p/ pages, the simulator page, health. Built by app.create_app."""
