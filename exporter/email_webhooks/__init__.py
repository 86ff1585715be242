"""Email providers' signed event webhooks on the public ingest listener (``email_webhooks:``).

``config`` holds the section (cheap to import); ``common`` what every provider shares;
one module per provider verifies its signature and maps its events; ``host`` is the HTTP side.
"""
