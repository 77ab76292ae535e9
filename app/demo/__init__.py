"""``salesbridge demo``: the service beside a sandbox CRM, a sample company, a first sync.

``sample_company`` holds the data, ``sandbox_thread`` serves the sandbox, ``connect``
runs the assisted setup and couples the salespeople, ``first_sync`` queues and follows
the full synchronization, ``run`` puts them together and ``instructions`` says what to
try next.
"""
