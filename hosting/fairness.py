"""A fair share of the queue: no one client can fill it for everyone.

Gradio's queue cap (``--queue-size``) is global: while one client sent 150 requests to
``/detect``, another client's ``/segment`` was told "Queue is full". Gradio has no per-client
limit, so the app wraps its queue's ``push`` (the one place every queued call enters, from the
page, the REST API and the MCP server alike): a client that already has its share of requests
waiting or running, by address or by session, is told so at once (HTTP 429), and everyone
else's requests are queued as before.
"""

from __future__ import annotations

import functools
from collections import Counter

from fastapi import HTTPException

from .clients import client_ip, session_of
from .settings import Limits


def keys_of(request, session_hash: str | None, hops: int) -> tuple[str, str | None]:
    """(address, session) of a queued request."""
    headers = list(request.headers.items()) if request is not None else []
    peer = request.client.host if request is not None and request.client else None
    return client_ip(headers, peer, hops), session_of(headers, session_hash)


def share_queue(queue, limits: Limits) -> None:
    """Make ``queue`` (a started Blocks' ``_queue``) refuse a client past its share (see the module docstring)."""
    push = queue.push

    @functools.wraps(push)
    async def fair_push(body, request, username):
        ip, session = keys_of(request, body.session_hash, limits.forwarded_hops)
        per_ip, per_session = _holding(queue, limits.forwarded_hops)
        if per_ip[ip] >= limits.queued_per_ip or (session is not None and per_session[session] >= limits.queued_per_session):
            raise HTTPException(
                status_code=429,
                detail="You already have as many requests waiting or running as one client may. "
                "Wait for one to finish, then send the next.",
            )
        return await push(body=body, request=request, username=username)

    queue.push = fair_push


def _holding(queue, hops: int) -> tuple[Counter, Counter]:
    """Events waiting or running, counted by address and by session."""
    events = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue]
    events += [e for job in queue.active_jobs if job for e in job]
    per_ip, per_session = Counter(), Counter()
    for event in events:
        ip, session = keys_of(event.request, event.session_hash, hops)
        per_ip[ip] += 1
        per_session[session] += 1
    return per_ip, per_session
