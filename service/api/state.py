"""What the service serves, loaded together and swapped together on reload."""
from __future__ import annotations

from dataclasses import dataclass

from service.classifier import Classifier
from service.embedder import Embedder
from service.lookup.lookup import Lookup, make_lookup
from service.settings import Settings


@dataclass(frozen=True)
class Runtime:
    classifier: Classifier
    lookup: Lookup


def load_classifier(settings: Settings, embedder: Embedder | None = None) -> Classifier:
    """The index, its trained scorer and the LLM backend; the embedding model is reused when given."""
    from service.build import SCORER_FILE
    from service.heads import BlendedScorer
    from service.llm import make_backend
    from service.store import artifact_path, load_index

    embedder = embedder or Embedder(settings.embedding_model, settings.embed_batch_size)
    index = load_index(settings.index_dir, embedder.model_name, embedder.dim)
    scorer_path = artifact_path(settings.index_dir, index.manifest, SCORER_FILE)
    scorer = BlendedScorer.load(scorer_path) if scorer_path.exists() else None
    return Classifier(index, embedder, make_backend(settings), settings, scorer)


def runtime_for(classifier: Classifier) -> Runtime:
    return Runtime(classifier, make_lookup(classifier.settings, classifier.index))
