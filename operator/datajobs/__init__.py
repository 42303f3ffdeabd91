"""datajobs-operator: run and safely cancel data jobs (IntegrityJob, MaskingExecution) on Kubernetes."""

__version__ = "0.1.0"
