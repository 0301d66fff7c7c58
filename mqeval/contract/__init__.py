"""Small interfaces shared between mqeval's parts, free of heavy dependencies (no torch import at module level)."""
