"""/jobs: a catalogue file classified as a job of the service, as `classify-file` would (service/jobs/).

POST /jobs takes the file as the request's body (curl --data-binary @catalogue.csv), streamed to the job's folder
within MOVIEGENRE_MAX_UPLOAD_BYTES (the body limit's own for this route: 413 as soon as it is passed), and answers
once it is whole, with the job's id; a runner classifies it beside the service. GET /jobs/{id} says how far it is,
and once done the output and the rejected rows can be downloaded, with the catalogue at a glance."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from service.api.deps import only_query_params
from service.atomic import fsync_path
from service.api.errors import error_response
from service.api.jobs import REPLICA, Jobs, job_caller
from service.api.models import ErrorResponse, JobOut, JobRemoved
from service.batch.records import TEXT_COLUMNS, CatalogueError, count_rows, file_format, text_column
from service.jobs.records import JobRecord, progress_of
from service.jobs.store import GLANCE, TooManyJobs

router = APIRouter(tags=["jobs"], responses={code: {"model": ErrorResponse}
                                             for code in (401, 404, 409, 413, 422, 429, 503)})
JOB_ID = Path(pattern="^[0-9a-f]{32}$", description="The id POST /jobs answered")
WRITE_BYTES = 1 << 20  # the upload is written to disk in pieces of this size, on a worker thread
Format = Literal["csv", "jsonl", "parquet"]
MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}


def _jobs(request: Request) -> Jobs:
    return request.app.state.jobs


def _iso(seconds: float | None) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds") if seconds is not None else None


def job_out(jobs: Jobs, record: JobRecord, now: float) -> JobOut:
    live = jobs.runner.rows_done(record.id) if jobs.runner is not None else None
    progress = progress_of(record, now, live)
    done = record.state == "done"
    glance = None
    if done:
        try:
            glance = json.loads((jobs.store.path(record.id) / GLANCE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            glance = None  # removed meanwhile
    return JobOut(id=record.id, name=record.name, state=record.state, input_format=record.input_format,
                  output_format=record.output_format, text_column=record.text_column,
                  created_at=_iso(record.created_at), finished_at=_iso(record.finished_at),
                  expires_at=_iso(jobs.store.expires_at(record)), upload_bytes=record.upload_bytes,
                  rows_total=progress.rows_total, rows_done=progress.rows_done, progress=progress.fraction,
                  rows_per_s=round(progress.rows_per_s, 1) if progress.rows_per_s is not None else None,
                  eta_s=round(progress.eta_s, 1) if progress.eta_s is not None else None,
                  classified=record.classified, rejected=record.rejected, error=record.error,
                  waiting=record.waiting, notes=record.notes,
                  replica=record.replica, output=f"/jobs/{record.id}/output" if done else None,
                  rejected_rows=f"/jobs/{record.id}/rejected" if done else None, glance=glance)


UPLOAD = {"requestBody": {"required": True, "description": "The file, as it is (not a form)", "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("/jobs", status_code=202, response_model=JobOut, openapi_extra=UPLOAD,
             dependencies=[Depends(only_query_params("name", "text_column", "output"))])
async def create(request: Request, response: Response,
                 name: str = Query(min_length=1, max_length=255, description=(
                     "The file's name: its extension says its format (.csv, .jsonl, .ndjson, .parquet)")),
                 text_column: str | None = Query(None, min_length=1, max_length=255, description=(
                     "The column to classify (default: plot, else description, any case)")),
                 output: Format | None = Query(None, description="The output's format (default: the file's)"),
                 caller: str = Depends(job_caller)) -> JobOut:
    """Upload a catalogue (the request's body: the file as it is) to be classified as a job: 202 with its id once
    the file is whole and its text column found. 413 beyond MOVIEGENRE_MAX_UPLOAD_BYTES, 429 when
    MOVIEGENRE_MAX_JOBS are kept."""
    jobs = _jobs(request)
    try:
        input_format = file_format(FilePath(name))
    except CatalogueError as exc:
        raise HTTPException(422, str(exc)) from exc
    now = jobs.store.clock()
    record = JobRecord(jobs.store.new_id(), name, caller, input_format, output or input_format, text_column, REPLICA,
                       now)
    try:
        lock = await run_in_threadpool(jobs.store.create, record)
    except TooManyJobs as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after or 3600)}) from exc
    except OSError as exc:
        raise HTTPException(503, f"jobs cannot be kept: the jobs folder cannot be written ({exc.strerror}); see "
                                 "MOVIEGENRE_JOBS_DIR") from exc
    kept = False
    try:
        record.upload_bytes = await _receive(request, jobs.store.input_path(record))
        refusal = await run_in_threadpool(_checked, jobs, record)
        if refusal is not None:
            return refusal
        kept = True
    except ClientDisconnect:
        slow = request.scope.get("state", {}).get("slow_body")
        if slow is not None:  # the admission's deadline on each piece of an upload
            return error_response(408, f"the upload stopped: no part of it came within {slow:g} s", close=True)
        return error_response(400, "the upload was cut off")
    finally:
        if not kept:  # refused, cut off, or over the size limit (the body limit answers 413)
            await run_in_threadpool(jobs.store.remove, record.id)
        lock.release()
    if jobs.runner is not None:  # else the runners take it when the app starts
        jobs.runner.wake()
    response.headers["Location"] = f"/jobs/{record.id}"
    return job_out(jobs, record, now)


async def _receive(request: Request, path: FilePath) -> int:
    """The body, streamed to `path` and on disk (the body limit stops it at MOVIEGENRE_MAX_UPLOAD_BYTES): its size."""
    size, pending = 0, bytearray()
    with path.open("wb") as f:
        async for piece in request.stream():
            pending += piece
            if len(pending) >= WRITE_BYTES:
                await run_in_threadpool(f.write, bytes(pending))
                size += len(pending)
                pending.clear()
        await run_in_threadpool(f.write, bytes(pending))
        size += len(pending)
        await run_in_threadpool(f.flush)
    await run_in_threadpool(fsync_path, path)  # the 202 says the file is kept: it is, whatever happens next
    return size


def _checked(jobs: Jobs, record: JobRecord) -> Response | None:
    """The upload read as classify-file would read it: its text column found and its rows counted, then queued;
    or the 422 that says why it cannot be classified."""
    source = jobs.store.input_path(record)
    if record.upload_bytes == 0:
        return error_response(422, f"{record.name} is empty")
    try:
        record.text_column = text_column(source, record.text_column)
        record.rows_total = count_rows(source)
    except CatalogueError as exc:
        if exc.columns is None or record.text_column is not None:
            return error_response(422, str(exc), columns=exc.columns)
        return error_response(422, f"{record.name} has no {' or '.join(TEXT_COLUMNS)} column: choose the column to "
                                   f"classify (text_column)", columns=exc.columns)
    except (_arrow_error(), OSError, UnicodeDecodeError) as exc:
        return error_response(422, f"{record.name} cannot be read as {record.input_format}: {exc}")
    record.state = "queued"
    jobs.store.save(record)
    return None


def _owned(request: Request, job_id: str, caller: str) -> tuple[Jobs, JobRecord]:
    jobs = _jobs(request)
    record = jobs.store.get(job_id)
    if record is None or record.owner != caller:
        raise HTTPException(404, f"no job {job_id} here (replica {REPLICA}): it finished more than "
                                 f"{request.app.state.settings.jobs.keep_hours:g} hours ago, was removed, or is "
                                 "kept by another replica")
    return jobs, record


@router.get("/jobs/{job_id}", response_model=JobOut, dependencies=[Depends(only_query_params())])
def status(request: Request, job_id: str = JOB_ID, caller: str = Depends(job_caller)) -> JobOut:
    """How far the job is: rows done of the file's, rate and time left; once done, its counts, the links to its
    output and rejected rows, and the catalogue at a glance."""
    jobs, record = _owned(request, job_id, caller)
    return job_out(jobs, record, jobs.store.clock())


def _download(request: Request, job_id: str, caller: str, rejected: bool) -> FileResponse:
    jobs, record = _owned(request, job_id, caller)
    if record.state != "done":
        raise HTTPException(409, f"job {job_id} is {record.state}: its files are ready once it is done")
    stem = FilePath(record.name).stem or "catalogue"
    if rejected:
        return FileResponse(jobs.store.rejected_path(record), media_type="application/x-ndjson",
                            filename=f"{stem}.rejected.jsonl")
    return FileResponse(jobs.store.output_path(record), media_type=MEDIA[record.output_format],
                        filename=f"{stem}.genres.{record.output_format}")


@router.get("/jobs/{job_id}/output", response_class=FileResponse, dependencies=[Depends(only_query_params())])
def download_output(request: Request, job_id: str = JOB_ID, caller: str = Depends(job_caller)) -> FileResponse:
    """The output: every input column, then genres, scores, backend and language (as classify-file writes it)."""
    return _download(request, job_id, caller, rejected=False)


@router.get("/jobs/{job_id}/rejected", response_class=FileResponse, dependencies=[Depends(only_query_params())])
def download_rejected(request: Request, job_id: str = JOB_ID, caller: str = Depends(job_caller)) -> FileResponse:
    """The rows that were not classified, one JSON object a line: row, reason, record."""
    return _download(request, job_id, caller, rejected=True)


@router.delete("/jobs/{job_id}", response_model=JobRemoved, dependencies=[Depends(only_query_params())])
def remove(request: Request, job_id: str = JOB_ID, caller: str = Depends(job_caller)) -> JobRemoved:
    """Remove a job and its files; a running one stops at its next text and is removed then."""
    jobs, record = _owned(request, job_id, caller)
    if record.state == "uploading":
        raise HTTPException(409, f"job {job_id} is still being uploaded")
    return JobRemoved(id=job_id, state="removed" if jobs.store.cancel(job_id) else "cancelling")


def _arrow_error() -> type[Exception]:
    """pyarrow's errors, imported once a file is read (a serving process that runs no job never imports pyarrow)."""
    import pyarrow as pa

    return pa.ArrowException
