"""Jobs under faults from outside the job: the service at capacity, the corrections store not answering, a full
disk, a runner's own error, another index served. A transient fault makes a job wait (its status says why), never
fail it for good, and never ends a runner."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.jobs.records import JobRecord
from service.jobs.runner import IndexChanged
from service.jobs.store import JobStore
from service.store import index_identity

from . import test_jobs

shared_classifier, classifier, app = test_jobs.shared_classifier, test_jobs.classifier, test_jobs.app  # its fixtures

HEIST = ["A crew of thieves plans a heist on a casino in Lyon."]


class Drafting:
    """The service as a runner sees it, serving the test's classifier."""

    def __init__(self, classifier):
        self.classifier = classifier

    def manifest(self):
        return self.classifier.index.manifest

    def draft(self, texts, index):
        return self.classifier.draft(texts)


def queued(store: JobStore, source: Path) -> JobRecord:
    record = JobRecord(store.new_id(), source.name, "anonymous", "csv", "csv", None, "here", created_at=0.0)
    store.create(record).release()
    store.input_path(record).write_bytes(source.read_bytes())
    record.state = "queued"
    store.save(record)
    return record


def test_the_index_served_is_told_by_what_it_holds_not_by_where_its_manifest_sits_in_memory(app, classifier):
    service = app()
    manifest = classifier.index.manifest
    kept = dict(manifest)
    with TestClient(service):
        drafting = service.state.jobs.runner.drafting
        index = index_identity(manifest)
        assert len(drafting.draft(HEIST, index)) == 1
        try:  # another build reloaded into the very object (a freed manifest's id is reused by the next)
            manifest.update(build="builds/20990101T000000000000Z", corpus_fingerprint="another corpus")
            with pytest.raises(IndexChanged):
                drafting.draft(HEIST, index)
        finally:
            manifest.clear()
            manifest.update(kept)
