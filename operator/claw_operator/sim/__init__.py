"""The sandbox: `flysim` (a Fly Machines API simulator) and `kubesim` (a Kubernetes API
emulator). Development and test infrastructure; never imported by the layers above."""
