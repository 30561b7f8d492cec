"""A short version of ``make soak``: a mixed load over every tab's endpoint against the real app."""

from __future__ import annotations

from bench.soak import REQUESTS, soak


def test_a_mixed_load_over_every_endpoint_is_answered_and_its_files_are_deleted_afterwards():
    report = soak(requests=8 * len(REQUESTS), clients=8, warmup=2 * len(REQUESTS), cache_age_min=0.05, log=lambda *a, **k: None)
    kinds = {o.kind for o in report.outcomes}
    assert kinds == {"answered"}, [o for o in report.outcomes if o.kind != "answered"][:3]
    assert {o.endpoint for o in report.outcomes} == set(REQUESTS)
    assert report.disk["end"] > report.disk["start"]  # the load did write files...
    assert report.disk["after the age"] - report.disk["start"] < 50 * 2**20  # ...and they were deleted
    assert "| /segment | 8 | 8 |" in report.markdown()
