"""`kubectl datajobs`: a kubectl plugin for IntegrityJobs and MaskingExecutions (not used by the operator)."""
