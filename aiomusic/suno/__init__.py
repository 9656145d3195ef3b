"""Suno API (sunoapi.org): Add Instrumental, tasks, callbacks, downloads, credits."""
