"""Remote hosts: the hosts.json schema, input validation and the registry store."""
