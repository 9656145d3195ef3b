"""The AI/ML API's asynchronous audio operations, declared once (none yet)."""

from __future__ import annotations

__all__: list[str] = []
