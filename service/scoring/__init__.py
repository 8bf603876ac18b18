"""The scoring floor: how answers are scored against gold labels (metrics.py) and how films are split for tuning
and calibration (splits.py). Training, calibration, the build and evaluation all stand on it; it stands on nothing
of theirs."""
