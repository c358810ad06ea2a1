"""Competitions: datasets, submissions, scoring against hidden holdouts, leaderboards."""
