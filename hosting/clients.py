"""Who a request comes from: its address (through trusted proxies) and its session.

On a Space every request reaches the app through Hugging Face's proxy, so the socket's peer is
the proxy, the same for everyone. The proxy appends the address it saw to ``X-Forwarded-For``;
entries to the left of the ones trusted proxies appended were written by the client and can be
anything, so only the entry ``hops`` from the right is believed (``--forwarded-hops``: 1 on a
Space, 0 elsewhere, where the header is ignored and the peer is the client).
"""

from __future__ import annotations

from typing import Iterable


def client_ip(headers: Iterable[tuple[str, str]], peer: str | None, hops: int) -> str:
    """The client's address: ``hops`` entries from the right of X-Forwarded-For, or the peer."""
    if hops > 0:
        forwarded = ",".join(value for key, value in headers if key.lower() == "x-forwarded-for")
        entries = [entry.strip() for entry in forwarded.split(",") if entry.strip()]
        if entries:
            return entries[-min(hops, len(entries))]
    return peer or "unknown"


def scope_headers(scope: dict) -> list[tuple[str, str]]:
    """An ASGI scope's headers as text pairs."""
    return [(key.decode("latin-1"), value.decode("latin-1")) for key, value in scope.get("headers", [])]


def scope_ip(scope: dict, hops: int) -> str:
    """``client_ip`` of an ASGI request."""
    peer = scope.get("client")
    return client_ip(scope_headers(scope), peer[0] if peer else None, hops)


def session_of(headers: Iterable[tuple[str, str]], session_hash: str | None) -> str | None:
    """The session a queued event belongs to: an MCP client's own session, else Gradio's session hash.

    Gradio's MCP server sends every MCP client's calls through one shared Gradio session, passing
    on the MCP request's headers; ``mcp-session-id`` tells the MCP clients apart.
    """
    for key, value in headers:
        if key.lower() == "mcp-session-id" and value:
            return f"mcp:{value}"
    return session_hash
