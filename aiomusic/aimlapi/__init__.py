"""The AI/ML API's asynchronous audio family (``POST/GET /v2/generate/audio``)."""
