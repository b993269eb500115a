"""The worker process: scheduler (leader only), jobs, polling, the outbox relay, stream bots."""
