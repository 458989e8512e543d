"""Certificates: every node holds a valid certificate for every name it may serve.

``kissha certs`` (run.py) obtains them from an ACME CA (acmeclient.py, the only module
that imports the ``acme`` library) by HTTP-01, answered on every node by the rule in
challenge.py; due.py and plan.py are pure; store.py reads and writes the files.
"""
