"""The status-page bridge: Alertmanager webhook in, status-page component updates out.

It runs inside the exporter process (docs/statuspage-bridge.md says why) and is
not a collector: nothing here is scraped. Its floors, lowest first:

* ``matchers.py``, ``templates.py``, ``payload.py``: pure parsers;
* ``config.py``: the ``statuspage_bridge:`` section (the loader imports it);
* ``providers/``: one small class per status-page service;
* ``state.py``: alerts -> what each component should show (pure);
* ``bridge.py``: the webhook handler, the sync worker and the metrics.
"""
