"""Real user monitoring: browsers post Web Vitals beacons, the exporter keeps bounded histograms.

``routes`` maps a page path to a configured pattern (the ``page`` label), ``device`` turns a
User-Agent into one of four classes, ``beacon`` parses and bounds one beacon, ``store``
holds the counts and renders the ``rum_*`` families, ``config`` is the ``rum:`` section and
``ingest`` is the HTTP side (its own listener).  Only ``ingest`` imports aiohttp.
"""
