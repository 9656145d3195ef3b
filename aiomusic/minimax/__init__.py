"""MiniMax music-01, served by the AI/ML API or by MiniMax's own hosts."""
