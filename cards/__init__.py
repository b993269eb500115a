"""What the bot shows: a neutral card model, builders and pure renderers."""
