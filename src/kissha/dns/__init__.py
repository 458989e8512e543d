"""DNS: the wire reader, verification queries and the server backends (nsd)."""
