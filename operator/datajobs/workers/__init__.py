"""Reference workers (`datajobs worker integrity|masking`): real work against PostgreSQL."""
