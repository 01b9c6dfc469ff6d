"""Test helpers shipped with purgemix (a dummy OpenAI-compatible server)."""
