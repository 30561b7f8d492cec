"""Benchmarks of Deep Vision Lab that print markdown tables (they are measurements, not tests).

``python -m bench`` measures the segmentation and detection models twice: in-process through the
app's own loader (``models.get``), model object and tab function, and end to end through the
running app's HTTP API (``/segment``, ``/detect`` via ``gradio_client`` and REST), then prints the
issues' latency targets with pass/fail. What differs per task lives in bench/tasks.py. See
bench/README.md.
"""
