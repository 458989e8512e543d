"""``kissha render``: every file a node needs, from the one config, through Jinja2 templates.

Pure: a config (and the zone source directory it names) in, file contents out. Jinja2
is imported only when rendering (cron's kissha never pays for it).
"""
