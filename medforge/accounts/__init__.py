"""Accounts: users, personal API tokens and the audit log."""
