"""aiomusic benchmarks: python -m benchmarks."""
