"""JobService over gRPC: protobuf in, domain calls, protobuf out."""

from __future__ import annotations

import grpc

from services.runtime.db import Database
from services.runtime.names import format_name, parse_name
from services.runtime.pagination import PageRequest, list_response_page
from services.runtime.protobuf import enum_filter, enum_maps, timestamp
from services.sync.adapters.repository import list_key
from services.sync.domain.model import Job, JobState, JobType, job_not_found
from services.sync.unit_of_work import SyncUnitOfWork
from steward.sync.v1 import jobs_pb2, jobs_pb2_grpc

_TYPE, _TYPE_FROM_PROTO = enum_maps(JobType, "JOB_TYPE_", jobs_pb2.JobType)
_STATE = enum_maps(JobState, "JOB_STATE_", jobs_pb2.JobState)[0]


def job_to_proto(job: Job) -> jobs_pb2.Job:
    return jobs_pb2.Job(
        name=format_name("jobs", job.id),
        uid=job.id,
        display_name=job.display_name,
        type=_TYPE[job.type],
        state=_STATE[job.state],
        connection=format_name("connections", job.connection_id) if job.connection_id else "",
        schedule=job.schedule,
        last_run_time=timestamp(job.last_run_time),
        create_time=timestamp(job.create_time),
        update_time=timestamp(job.update_time),
        etag=job.etag,
    )


class JobServicer(jobs_pb2_grpc.JobServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db

    def GetJob(self, request: jobs_pb2.GetJobRequest, context: grpc.ServicerContext) -> jobs_pb2.Job:
        job_id = parse_name("jobs", request.name)
        with SyncUnitOfWork(self._db, write=False) as uow:
            job = uow.jobs.get(job_id)
        if job is None:
            raise job_not_found(job_id)
        return job_to_proto(job)

    def ListJobs(self, request: jobs_pb2.ListJobsRequest, context: grpc.ServicerContext) -> jobs_pb2.ListJobsResponse:
        job_type = enum_filter(request.type, _TYPE_FROM_PROTO, "type")

        def fetch(page: PageRequest) -> list[Job]:
            with SyncUnitOfWork(self._db, write=False) as uow:
                return uow.jobs.list_page(limit=page.limit, after=page.after, job_type=job_type)

        jobs, next_token = list_response_page(
            request.page_size, request.page_token, {"type": request.type}, 2, fetch, list_key
        )
        return jobs_pb2.ListJobsResponse(jobs=[job_to_proto(j) for j in jobs], next_page_token=next_token)
