"""Pure renderers: one function per platform turning a Card into that platform's payload."""
