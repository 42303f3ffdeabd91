"""The operator: kopf handlers that gather facts, the engine that applies the lifecycle core's decisions."""
