"""Editors' corrections: stored durably (store.py), served at once beside the index (side_index.py), folded
into the reference by the next build (fold.py)."""
from service.corrections.side_index import CorrectedFilm, Corrections
from service.corrections.store import Correction, CorrectionStore, StoreUnavailable, store_path

__all__ = ["CorrectedFilm", "Correction", "CorrectionStore", "Corrections", "StoreUnavailable", "store_path"]
