"""MiniMax: music-01 (AI/ML API or MiniMax's hosts) and the current models on MiniMax's hosts."""
