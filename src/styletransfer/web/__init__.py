"""The local web studio (``styletransfer serve``): a FastAPI server, an SQLite job store, a queue, one static page.

Needs the ``web`` extra (``pip install 'gatys-styletransfer[web]'``); import
:mod:`styletransfer.web.server` for :func:`~styletransfer.web.server.serve`
and :func:`~styletransfer.web.server.create_app`.
"""
