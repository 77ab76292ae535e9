"""The job queue: due entries, claim, run, finish/fail (``queue``), what administrators
change (``entries``), one-off runs and full syncs (``scheduling``), waking resting entries
when the ERP changed (``wakeup``), the sync log purge, and what the codeunit-style jobs
share (``crm_jobs``). Which runner runs each job kind is wired in ``app.catalog``, above
both this package and the job kinds, so the queue never imports a job kind."""
