"""Editors' corrections: stored durably (store.py, schema.py) in SQLite or PostgreSQL (database.py), what is served
decided by one rule (served.py), served at once beside the index (side_index.py; what requests read of it,
snapshot.py), folded into the reference by the next build (fold.py)."""
from service.corrections.bounds import Limits, OverBound, QueueFull, ShareFull
from service.corrections.idempotency import IdempotencyKey, KeyReused
from service.corrections.side_index import Corrections
from service.corrections.snapshot import CorrectedFilm
from service.corrections.records import Correction, Draft, Written
from service.corrections.database import CommitUnknown, StoreUnavailable
from service.corrections.store import CorrectionStore, store_location, store_path

__all__ = ["CommitUnknown", "CorrectedFilm", "Correction", "CorrectionStore", "Corrections", "Draft", "IdempotencyKey",
           "KeyReused", "Limits", "OverBound", "QueueFull", "ShareFull", "StoreUnavailable", "Written",
           "store_location", "store_path"]
