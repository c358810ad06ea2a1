"""Forward auth for session hosts: host parsing, the decision, and its cache (the hot path)."""
