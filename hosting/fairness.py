"""A fair share of the queue: no one client can fill it for everyone, nor make everyone wait behind it.

Gradio's queue cap (``--queue-size``) is global: while one client sent 150 requests to
``/detect``, another client's ``/segment`` was told "Queue is full". Gradio has no per-client
limit, so the app wraps its queue's ``push`` (the one place every queued call enters, from the
page, the REST API and the MCP server alike): a client that already has its share of requests
waiting or running, by address or by session, or in the endpoint's own queue by address, is told
so at once (HTTP 429), and everyone else's requests are queued as before.

Within its share a client could still make everyone wait: each endpoint's queue is first come,
first served, so the 16 calls a flooder had queued in ``/detect`` ran before any call that came
after them (in the soak, ``/detect``'s p95 for everyone else was 3.5x the calm run's). Two things
keep that from happening. The share per endpoint (``--max-queued-per-endpoint``, 4) bounds what
one address holds in any one queue, and so the work it keeps running there. And the app wraps the
queue's ``get_events`` (where Gradio's one loop takes the next event of an endpoint with a free
slot): each endpoint serves its waiting clients in turn, by address. Next is the client with the
fewest events running in that endpoint, then the one whose turn there came longest ago (a client
never served there first), then the oldest event; a flooder gets one turn per round like everyone else.
"""

from __future__ import annotations

import functools
import itertools
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
    """Make ``queue`` (a started Blocks' ``_queue``) refuse a client past its share and serve clients in turn."""
    push = queue.push

    @functools.wraps(push)
    async def fair_push(body, request, username):
        ip, session = keys_of(request, body.session_hash, limits.forwarded_hops)
        per_ip, per_session, per_endpoint = _holding(queue, limits.forwarded_hops)
        endpoint = _concurrency_id(queue, body)
        if (
            per_ip[ip] >= limits.queued_per_ip
            or (session is not None and per_session[session] >= limits.queued_per_session)
            or (endpoint is not None and per_endpoint[ip, endpoint] >= limits.queued_per_endpoint)
        ):
            raise HTTPException(
                status_code=429,
                detail="You already have as many requests waiting or running as one client may. "
                "Wait for one to finish, then send the next.",
            )
        return await push(body=body, request=request, username=username)

    queue.push = fair_push
    take_turns(queue, limits.forwarded_hops)


def _running(queue) -> list:
    return [e for job in queue.active_jobs if job for e in job]


def _concurrency_id(queue, body) -> str | None:
    """The queue (one per endpoint, or per group sharing a ``concurrency_id``) ``body``'s call waits in.

    Read from the Blocks' own functions, not the session's copy Gradio's ``get_fn`` makes: a refused
    call must not cost a session's state. An unknown function is left to Gradio's own answer.
    """
    fn = queue.blocks.fns.get(body.fn_index) if body.fn_index is not None else None
    return fn.concurrency_id if fn is not None else None


def _holding(queue, hops: int) -> tuple[Counter, Counter, Counter]:
    """Events waiting or running, counted by address, by session and by (address, concurrency id)."""
    events = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue] + _running(queue)
    per_ip, per_session, per_endpoint = Counter(), Counter(), Counter()
    for event in events:
        ip, session = keys_of(event.request, event.session_hash, hops)
        per_ip[ip] += 1
        per_session[session] += 1
        per_endpoint[ip, event.concurrency_id] += 1
    return per_ip, per_session, per_endpoint


def take_turns(queue, hops: int) -> None:
    """Wrap ``queue.get_events`` so each endpoint serves its waiting clients in turn (see the module docstring).

    Gradio calls ``get_events`` under the queue's lock, as often as every millisecond while events
    wait; only endpoints with a free slot, which it is about to take from, are reordered.
    """
    get_events = queue.get_events
    serial = itertools.count()
    last_turn: dict[str, dict[str, int]] = {}  # concurrency id -> address -> serial of its last start there

    @functools.wraps(get_events)
    def get_events_in_turn():
        running = _running(queue)
        for concurrency_id, waiting in queue.event_queue_per_concurrency_id.items():
            has_room = waiting.concurrency_limit is None or waiting.current_concurrency < waiting.concurrency_limit
            if has_room and len(waiting.queue) > 1:
                busy = Counter(_address(e, hops) for e in running if e.concurrency_id == concurrency_id)
                _put_next_first(waiting.queue, busy, last_turn.get(concurrency_id, {}), hops)
        picked = get_events()
        if picked:
            events, _, concurrency_id = picked
            turns = last_turn.setdefault(concurrency_id, {})
            turns[_address(events[0], hops)] = next(serial)
            still_there = [*queue.event_queue_per_concurrency_id[concurrency_id].queue, *running, *events]
            present = {_address(e, hops) for e in still_there}
            for address in [a for a in turns if a not in present]:  # forget clients with nothing there
                del turns[address]
        return picked

    queue.get_events = get_events_in_turn


def _address(event, hops: int) -> str:
    return keys_of(event.request, None, hops)[0]


def _put_next_first(waiting: list, busy: Counter, turns: dict[str, int], hops: int) -> None:
    """Move the event whose client's turn it is to the front of ``waiting``."""
    addresses = [_address(e, hops) for e in waiting]
    best = min(range(len(waiting)), key=lambda i: (busy[addresses[i]], turns.get(addresses[i], -1), i))
    if best:
        waiting.insert(0, waiting.pop(best))
