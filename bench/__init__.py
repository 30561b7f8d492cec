"""Benchmarks of Deep Vision Lab that print markdown tables (they are measurements, not tests).

``python -m bench`` measures the segmentation models twice: in-process through the app's own
loader (``models.get``) and model object, and end to end through the running app's HTTP API
(``/segment`` via ``gradio_client``), then prints the issue's latency targets with pass/fail.
See bench/README.md.
"""
