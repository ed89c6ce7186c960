"""model_service: the one process that holds model weights, behind an OpenAI-compatible API.

    python -m model_service serve --checkpoint checkpoints/tiny-random --port 8100
"""
