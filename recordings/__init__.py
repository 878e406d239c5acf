"""Ingest pipeline (probe, transcode, loudness, tags, TTS, chime), archive and replay files."""
