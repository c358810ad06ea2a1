"""GPU IDE sessions: GPUs, packs, sessions, snapshots; allocation, lifecycle and reconcile."""
