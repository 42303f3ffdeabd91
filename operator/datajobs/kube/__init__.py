"""Small, neutral Kubernetes helpers shared by the operator and the adapter (client configuration)."""
