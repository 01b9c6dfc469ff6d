"""Text utilities every family shares: token counts, language ID, and seeded, labelled corruptions."""
