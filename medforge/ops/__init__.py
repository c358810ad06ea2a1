"""Operations surface: health, readiness, status, metrics, heartbeats, maintenance mode."""
