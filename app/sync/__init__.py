"""The integration engine: job queue, job kinds and (in later issues) the synchronization."""
