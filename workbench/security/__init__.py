"""Users, sessions and the encrypted vault for API keys and broker tokens."""
