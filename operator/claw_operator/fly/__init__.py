"""The Fly Machines client: the only code that talks to Fly (httpx, typed errors, retries,
rate limits, leases, waits)."""
