"""Helpers of the sicore Snakemake workflow: sessions and rule params (settings), resource estimates."""

from .settings import SECTIONS, ConfigError, Session, build_sessions, job_options  # noqa: F401
