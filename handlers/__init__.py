"""What the bot does: neutral Inbound events in, state changes and Cards out."""
