"""Jobs for ``courseport run``: the Job API and example jobs."""

from .base import CourseJob, Job, JobError

__all__ = ["CourseJob", "Job", "JobError"]
