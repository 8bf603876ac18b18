"""Classifying a catalogue from a file: `moviegenre classify-file` (batch/run.py), on this machine or on a
Ray cluster (batch/ray_engine.py), in chunks that are each classified, written and resumable (batch/chunks.py)."""
