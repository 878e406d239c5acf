"""Disaster alerts: CAP 1.2 in, villages and speech out, a signed as-run log (the pure parts)."""
