"""Webhooks as Dataverse sends them: registered steps, the execution context, delivery.

A write that commits on a table with an enabled asynchronous post-operation step for its
message (Create, Update, Delete) is POSTed, as a ``RemoteExecutionContext``, to the step's
service endpoint by a background system job: after the commit and after the request's
answer, with retries, a timeout and the delivery faults the control API sets.
"""
