"""The command groups: tokens, packs, sessions, snapshots, competitions."""
