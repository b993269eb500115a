"""Independent checks of what planloop publishes (issue 16). Standard library only: nothing here
imports planloop's scoring, so a check is a second opinion, not the same code run twice."""
