"""The cluster twin: simulated machines for K8sNvidia's real state tree."""
