"""The AI/ML API's asynchronous audio family (``POST/GET /v2/generate/audio``)."""

from __future__ import annotations

from .client import AimlapiClient, AimlapiResult, AimlapiTask

__all__ = ["AimlapiClient", "AimlapiResult", "AimlapiTask"]
