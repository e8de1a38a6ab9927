"""The decisions: given spec + observed Fly state + status, what to do next and what status
results. Pure and synchronous where it can be; no kopf, no HTTP."""
