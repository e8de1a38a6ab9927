"""The kopf wiring: handlers, settings, the resourceVersion-conditional status writer, events,
metrics and health. The only code that imports kopf."""
