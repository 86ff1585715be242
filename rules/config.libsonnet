// Every selector, threshold, `for` duration and severity of the rule pack.
// Override in your own jsonnet:  (import 'rules/mixin.libsonnet') + { _config+:: { redis+: { memoryRatio: 0.8 } } }
// Each setting says why you would change it.  `for` durations are Prometheus durations.
{
  _config+:: {
    // ------------------------------------------------------------------ links
    // Base of the runbook links; each alert links to `<base>#<alertname in lower case>`,
    // the anchor GitHub gives the alert's heading in docs/runbooks.md.  Point it at your
    // fork or your wiki mirror.
    runbookUrlBase: 'https://github.com/stack-exporter/stack-exporter/blob/main/docs/runbooks.md',
    // Your Grafana; dashboard_url is `<grafanaUrl>/d/<uid>`.
    grafanaUrl: 'https://grafana.example.com',
    // Stable uids of the dashboards in dashboards/, which alerts link to.  Change only if you
    // re-import the dashboards under other uids.
    dashboardUids: {
      overview: 'stack-overview',
      redis: 'stack-redis',
      postgres: 'stack-postgres',
      billing: 'stack-billing',
      email: 'stack-email',
      hosts: 'stack-hosts',
      exporter: 'stack-exporter',
      rum: 'stack-rum',
    },

    // The pack's version, exported as stack_rulepack_info{version}; lives in rules/VERSION.
    rulepackVersion: std.stripChars(importstr 'VERSION', ' \n'),

    // What "the same thing" is for the InfoInhibitor: an info alert stays quiet unless a
    // warning or critical alert fires about the same thing, which is named by the first
    // of these labels an alert has.  `provider` first: an email account is known by its
    // provider (the example names every account `mail`), and a status page by its
    // `target`, which is the provider's name (statuspages: `sendgrid`, `mailgun`, as the
    // email sections are called): so SendGrid's status-page incident and the alerts of
    // SendGrid's accounts are one thing.  Name your status pages after the provider's
    // section, or they pair with nothing.  Alertmanager's InfoInhibitor rule compares
    // the same labels (alertmanager.yml, `equal`): change both together.
    infoInhibitorLabels: ['provider', 'target'],
    // Labels that must also be equal (the InfoInhibitor joins on them as well).  Add
    // `namespace` or `cluster` if one Prometheus watches several stacks, and add them
    // to the Alertmanager rule's `equal` too.
    infoInhibitorScopeLabels: [],

    // Labels of the PrometheusRule object: prometheus-operator picks rules by its
    // ruleSelector, so match what your Prometheus resource selects.
    prometheusRuleLabels: { prometheus: 'k8s', role: 'alert-rules', 'app.kubernetes.io/name': 'stack-exporter' },

    // ------------------------------------------------------------------ escalation
    // Alerts that mean "users are affected now" escalate when still firing after these
    // times: a copy of the alert, critical and `escalated="true"`, which Alertmanager sends
    // by SMS as well as to the pager (lib/escalate.libsonnet, alertmanager/alertmanager.yml).
    // Each time counts from the moment the alert's condition began, like its own `for`, so
    // it must be longer than that `for` (the render fails otherwise); the page went out
    // then, and the SMS says "still broken".  alertmanager/README.md shows the whole
    // timeline.  Set a time to null to turn that escalation off; shorten the times if
    // nobody may sleep through a page, lengthen them if the pager is answered reliably.
    escalation: {
      // Every request fails, or the public endpoint does: twelve minutes after the page
      // with no fix is when customers start reporting it, so wake the phone too.
      probeEndpointDown: '15m',
      appDown: '15m',
      postgresDown: '15m',
      // PgBouncer is the app's only way to PostgreSQL, and an exhausted pool makes every
      // request wait seconds for a connection: for users both are the database being down.
      pgBouncerDown: '15m',
      pgBouncerPoolExhausted: '15m',
      // Redis holds sessions, caches and queues: apps usually slow down or log users out
      // rather than stop, so half an hour.
      redisDown: '30m',
      // Billing: sign-ups, upgrades and usage events fail, but the product keeps working.
      lagoDown: '30m',
      // The CMS: editors cannot publish, and pages rendered from it on request fail; sites
      // built or cached from it keep serving.  DirectusUnhealthy escalates only its
      // critical level (health `error`: its database or storage fails), not `warn`.
      directusDown: '30m',
      directusUnhealthy: '30m',
      // Part of the requests fail (5% or more): half an hour of that is an outage for
      // the users who hit it.  The warning's escalated copy is also its first page.
      appHighErrorRatio: '30m',
      // The burn-rate alerts to escalate, by their long window: only the fast page
      // (14.4x, 1h/5m), where 30 minutes spend 1% of the month's budget.  The 6h window
      // is a slow leak a page handles in hours; SMS for it would be noise.
      appErrorBudgetBurn: { '1h': '30m' },
      // Providers queue and retry for hours, so mail is late rather than lost, and the
      // alert already needs an hour without deliveries: one more hour.
      emailDeliveriesStopped: '1h',
      // A warning (the API may be flaky, its stats are cached 5 minutes), but an hour of
      // an unreachable API means sending through it fails too, or our key was revoked:
      // no mail for anyone.  Its escalated copy is its first page.
      emailProviderDown: '1h',
    },

    // ------------------------------------------------------------------ exporter
    // Selects the stack-exporter scrape job.  Change it to your job name; every
    // source below defaults to it because all their metrics come from the exporter.
    exporterSelector: 'job="stack-exporter"',
    exporter: {
      // How long the exporter may be down before the page: long enough to ride out a
      // rolling restart, short enough that nobody is blind for long.
      downFor: '5m',
      // A collector failing this long is not a blip (deadlines, a restart of the backend).
      collectorFailingFor: '10m',
      // Served data older than this is stale.  Must exceed the longest min refresh
      // interval of your sources (300 s for email stats by default): raise it if you raise those.
      staleSeconds: 900,
      staleFor: '5m',
      reloadFailedFor: '5m',
      // The status-page bridge unable to apply a component's status this long.  Longer
      // than the bridge's own min_flap_interval (5m by default), during which it holds a
      // status on purpose, and than a few of its backed-off retries of a 429 or 5xx.
      bridgeStaleFor: '15m',
      // A query of a collector (postgres custom queries, pg_stat_statements, per-database
      // table stats) failing at every run of `queryErrorsWindow` for `queryFailingFor`:
      // its metrics are dropped and every alert on them is blind.  One timeout is a blip.
      // A failed query is not cached: it runs (and counts) again at the next scrape, so the
      // window must be longer than your scrape interval.
      queryErrorsWindow: '5m',
      queryFailingFor: '15m',
      // A status page unreadable this long: EmailProviderIncident is blind to that
      // provider.  Status pages are public and flaky: give them half an hour.
      statuspageDownFor: '30m',
      // The up-style metric of each source and its collector: a collector failure whose
      // source already reports itself down is that source's alert, not a second one from
      // the exporter.  Matched on (collector, target), because two sources may share a
      // target name (the defaults name both Redis and PostgreSQL `local`).  The email
      // providers share one up metric whose `provider` label is the collector's name.
      upMetrics: [
        { metric: 'redis_up', collector: 'redis' },
        { metric: 'pg_up', collector: 'postgres' },
        { metric: 'pgbouncer_up', collector: 'pgbouncer' },
        { metric: 'lago_up', collector: 'lago' },
        { metric: 'directus_up', collector: 'directus' },
        { metric: 'statuspage_up', collector: 'statuspages' },
        { metric: 'email_dns_up', collector: 'email_domains' },
        { metric: 'probe_success', collector: 'http_probes' },
        { metric: 'email_provider_up', collectorLabel: 'provider' },
      ],
    },

    // ------------------------------------------------------------------ app (HTTP)
    app: {
      // Selects the application's own scrape job(s).
      selector: 'job="app"',
      // Counters of requests.  prometheus-client style `http_requests_total` and the
      // `_count` of OpenTelemetry's `http_server_request_duration_seconds` histogram.
      // List only one metric per app: two that count the same requests would double them.
      requestMetrics: ['http_requests_total', 'http_server_request_duration_seconds_count'],
      // Latency histograms (base names, without `_bucket`), in seconds.
      latencyHistograms: ['http_request_duration_seconds', 'http_server_request_duration_seconds'],
      // Labels that may carry the status code and the route, tried in order; the recording
      // rules copy the first non-empty one into `code` and `route`.  Add yours if your
      // instrumentation uses another name.
      statusLabels: ['code', 'status', 'status_code', 'http_response_status_code'],
      routeLabels: ['route', 'handler', 'http_route', 'path'],
      // Labels the app's series are aggregated by (the "level" of the recording rules).
      // Add `namespace` or `cluster` for several environments in one Prometheus.
      aggregationLabels: ['job'],
      // Scrape of the app failing (`up == 0`) or its job gone from Prometheus (no `up` at
      // all: service discovery lost it) this long pages: every other App* alert is blind.
      downFor: '5m',
      absentFor: '15m',

      // 5xx ratio: 5% is where users notice; lower it for a payment API.
      errorRatioWarning: 0.05,
      errorRatioFor: '5m',
      // ... and only with at least this many requests in those 5 minutes (30 is 0.1/s, the
      // route floor below): at one request a minute a single 500 is a 20% ratio, not an
      // outage.  Lower it for a service whose every request matters and which is quiet.
      errorRatioMinRequests: 30,
      // Still firing after `escalation.appHighErrorRatio`: a critical (see `escalation`).
      // Per route, and only on routes with real traffic (requests/s), so one failing
      // request on a quiet route does not page.
      routeErrorRatio: 0.1,
      routeMinRequestRate: 0.1,
      routeErrorRatioFor: '10m',
      // 4xx spike: the 4xx ratio over 5m above this multiple of the same hour's ratio
      // `clientErrorBaselineOffset` ago, and above a floor so tiny ratios do not count.
      clientErrorSpikeFactor: 3,
      clientErrorMinRatio: 0.05,
      clientErrorBaselineOffset: '1d',
      clientErrorSpikeFor: '10m',
      // Latency per route, seconds.  Set to your SLO's latency objective.
      latencyP95Seconds: 1,
      latencyP99Seconds: 2.5,
      latencyFor: '10m',

      // Multi-window multi-burn-rate alerts for an availability SLO (Google SRE workbook,
      // chapter 5).  Turn off with `enabled: false` if you have no SLO yet.
      slo: {
        enabled: true,
        // 99.9% over 30 days: 43 minutes of full outage a month.
        target: 0.999,
        // A burn alert needs at least this many requests in its long window: with fewer, one
        // failure is already 14.4x a 99.9% budget (the SRE workbook's advice for low-traffic
        // services).  Lower it if the service is quiet and a few failures must page; or make
        // synthetic traffic (a probe) so the SLO has enough requests to mean something.
        minRequests: 100,
        // Burn-rate windows: page (critical) when a 30-day budget would be gone in about
        // two days (14.4x) or five days (6x); ticket (warning) for slower burns.
        windows: [
          { long: '1h', short: '5m', factor: 14.4, severity: 'critical', 'for': '2m' },
          { long: '6h', short: '30m', factor: 6, severity: 'critical', 'for': '15m' },
          { long: '1d', short: '2h', factor: 3, severity: 'warning', 'for': '1h' },
          { long: '3d', short: '6h', factor: 1, severity: 'warning', 'for': '3h' },
        ],
      },
    },

    // ------------------------------------------------------------------ probes (uptime and TLS)
    probe: {
      // Our exporter's http_probes (blackbox-compatible names).  For blackbox_exporter
      // itself, use its job (e.g. 'job="blackbox"') and set `targetLabel` to 'instance'.
      selector: $._config.exporterSelector,
      // The label that names the probed endpoint in descriptions and groupings.  Our
      // exporter's probes carry `target` (the probe's name; all share the exporter's
      // instance).  blackbox_exporter's series have no `target`: the usual relabelling
      // (__param_target -> instance) makes the probed URL their `instance`.
      targetLabel: 'target',
      // Down for this long pages: one failed probe is noise, two minutes of failures is not.
      downFor: '2m',
      // A probe slower than this is what users feel as a slow page.
      slowSeconds: 2,
      slowFor: '10m',
      // Certificate renewal normally happens 30 days ahead (Let's Encrypt): 14 days left
      // means it failed; 3 days leaves just enough time to fix by hand.
      certWarningDays: 14,
      certCriticalDays: 3,
      // CDN and static assets (probes with `check_cache: true`).  ProbeCacheHeadersLost: the
      // response's max-age and s-maxage both below `cacheMinMaxAgeSeconds` on a probe that
      // had a long one within `cacheLookback` (a deploy dropped the Cache-Control header).
      // ProbeCacheMissing: fewer than `cacheHitRatio` of the probes in `cacheHitWindow` were
      // cache hits on a probe that was a hit within `cacheLookback` (the CDN stopped caching).
      cacheMinMaxAgeSeconds: 3600,
      cacheLookback: '7d',
      cacheHitRatio: 0.5,
      cacheHitWindow: '1h',
      cacheFor: '30m',
    },

    // ------------------------------------------------------------------ real users (rum)
    // The exporter's `rum:` listener: Core Web Vitals from users' browsers (docs/rum.md).
    // Thresholds are Google's "poor" boundaries (web.dev/articles/vitals), each a bucket bound
    // of the exporter's histograms, so "p75 over X" is exact, not interpolated.
    rum: {
      // The series are on the exporter's own /metrics (no `target` label).
      selector: $._config.exporterSelector,
      // Labels the per-page series are aggregated by, besides `page`.  Add `namespace` or
      // `cluster` if several sites' exporters share one Prometheus under one job.
      aggregationLabels: ['job'],
      // p75, good shares and error ratios are computed over this window.  Browser beacons
      // are sparse (one a page view): 30 minutes holds enough views for a p75 on a page of
      // a few views a minute; shorter makes a handful of slow phones the p75.
      window: '30m',
      // A page needs this many views reporting the metric in `window` before any per-page
      // alert looks at it (for LCP/INP: views that reported LCP/INP; for errors: page
      // views).  With fewer, one slow view on a quiet page (or a quiet night) is the p75.
      // 30 in 30 minutes is one a minute.  Lower it for a small site, knowing a p75 of ten
      // views is three people.
      minViews: 30,
      // p75 LCP above this many seconds is "poor" (Google: good <= 2.5 s, poor > 4 s).
      lcpPoorSeconds: 4,
      // ... for this long, on top of the window: a deploy that slows a page pages within
      // the hour; a burst of slow views (a cold CDN after a purge) does not.
      lcpFor: '15m',
      // p75 INP above this many seconds is "poor" (Google: good <= 200 ms, poor > 500 ms).
      // Only views with an interaction report INP, so `minViews` counts those.
      inpPoorSeconds: 0.5,
      inpFor: '15m',
      // The "good" LCP bound (Google: 2.5 s); must be a bucket bound of rum_lcp_seconds.
      lcpGoodSeconds: 2.5,
      // RumGoodShareDrop: the share of a page's views with a good LCP in `window` below
      // `goodShareDropRatio` times the same share over `goodShareBaselineWindow` (the page's
      // own baseline, so a page that is always slow does not fire, and a fast page that
      // got slower does).  0.75: a page 90% good falling under 67.5%, a quarter of its
      // good views lost.  The baseline is a day so the daily mix of devices averages out;
      // a drop lasting longer than about a day becomes the new baseline.
      goodShareDropRatio: 0.75,
      goodShareBaselineWindow: '1d',
      goodShareFor: '15m',
      // RumJsErrorSpike: JavaScript errors per page view of a page in `window` above
      // `jsErrorSpikeFactor` times its ratio over `jsErrorBaselineWindow`, and above
      // `jsErrorMinPerView` (the absolute floor): extensions and old browsers throw on every
      // site, and a page with almost no errors would otherwise page for three of them.
      // 0.05 is one view in twenty throwing; raise it if your pages are noisy.  Errors are
      // counted, not views with errors: on a page near `minViews`, one visitor whose browser
      // throws in a loop makes the ratio alone; raise `minViews` if that pages you.
      jsErrorSpikeFactor: 3,
      jsErrorMinPerView: 0.05,
      jsErrorBaselineWindow: '1d',
      jsErrorFor: '15m',
      // RumBeaconsStopped: no beacon accepted in `beaconsStoppedWindow` although the same
      // window `beaconsBaselineOffset` ago had at least `beaconsMinBaseline` (so a site
      // quiet at night, quiet yesterday night too, does not fire; nor a RUM set up less
      // than a day ago), while every probe `probeSelector` picks succeeded through the
      // window: the site serves pages but their beacons do not arrive (the adapter was
      // dropped in a deploy, a CSP or an ad blocker rule blocks it, the endpoint's
      // ingress broke).  Without a probe matching `probeSelector` it never fires.
      beaconsStoppedWindow: '30m',
      beaconsBaselineOffset: '1d',
      beaconsMinBaseline: 20,
      beaconsStoppedFor: '15m',
      // The uptime probes of the site carrying the adapter (http_probes: probe_success).
      // The default takes every probe of the exporter, and all must be up: narrow it to the
      // site's own probe (e.g. `job="stack-exporter", target="home"`), or a failing probe of
      // something else (an API, a CDN asset) keeps this alert quiet.
      probeSelector: $._config.probe.selector,
    },

    // ------------------------------------------------------------------ hosts (node_exporter)
    node: {
      // node_exporter's scrape job.
      selector: 'job="node"',
      // A host whose scrape fails (`up == 0`: dead, unreachable or node_exporter stopped)
      // this long pages, because every other Node* alert then resolves; no `up` of the job
      // at all (service discovery lost every host) pages after `absentFor`.
      downFor: '5m',
      absentFor: '15m',
      // Filesystems worth alerting on; pseudo and image filesystems are always full or read-only.
      fsSelector: 'fstype!~"tmpfs|ramfs|squashfs|overlay|iso9660|nsfs|fuse.*",mountpoint!~"/(run|snap|var/lib/docker)($|/.*)"',
      cpuRatio: 0.9,
      cpuFor: '15m',
      memoryRatio: 0.9,
      memoryFor: '15m',
      // Free space fractions: 10% leaves a day or so on a typical disk, 5% is hours.
      fsFreeWarning: 0.10,
      fsFreeCritical: 0.05,
      fsFreeFor: '30m',
      // Predicted full, extrapolating the last `fsPredictWindow`, and already low, so a fresh
      // log burst on an empty disk does not fire (node-mixin's tiers): a ticket when full within
      // `fsPredictWarningHours` and below `fsPredictWarningMaxFree` free, a page when full
      // within `fsPredictHours` and below `fsPredictMaxFree`.  Shorten the hours if your
      // disks are refilled by automation faster than that.
      fsPredictWarningHours: 24,
      fsPredictWarningMaxFree: 0.4,
      fsPredictHours: 4,
      fsPredictMaxFree: 0.2,
      fsPredictWindow: '6h',
      fsPredictFor: '1h',
      inodesFreeRatio: 0.05,
      inodesFor: '30m',
      // Interface errors per packet; 1% means a bad cable, NIC or driver.
      networkErrorRatio: 0.01,
      networkErrorsFor: '1h',
      // Clock offset in seconds: TLS, TOTP and distributed locks start failing around 1 s;
      // 50 ms is where NTP is clearly not doing its job.
      clockSkewSeconds: 0.05,
      clockSkewFor: '10m',
      // Block devices worth watching (node-mixin's list): loop, ram and zram devices hold
      // no data worth a ticket.  Add your device names if they differ.
      diskDeviceSelector: 'device=~"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+)"',
      // Average IO queue depth (rate of node_disk_io_time_weighted_seconds_total): above
      // 10 for 30 minutes, requests wait on the disk (node-mixin's NodeDiskIOSaturation).
      // Raise it for NVMe or a RAID with many spindles, which serve deep queues well.
      diskIOQueueDepth: 10,
      diskIOFor: '30m',
      // Conntrack entries of the table's limit: at the limit the kernel drops new
      // connections ("nf_conntrack: table full").  75% leaves time to raise the limit.
      conntrackRatio: 0.75,
      conntrackFor: '5m',
      // Allocated file handles of the kernel's maximum (fs.file-max): at the maximum every
      // open() and accept() fails.  node-mixin's 70% and 90%.
      fileDescriptorsWarning: 0.7,
      fileDescriptorsCritical: 0.9,
      fileDescriptorsFor: '15m',
      // Failed systemd units; needs node_exporter's systemd collector, off by default:
      // start node_exporter with --collector.systemd.  Narrow with a `name` matcher
      // (e.g. 'name!~"fwupd.*"') if a unit fails by design.
      systemdSelector: 'state="failed"',
      systemdFailedFor: '5m',
    },

    // ------------------------------------------------------------------ PostgreSQL and PgBouncer
    postgres: {
      selector: $._config.exporterSelector,
      downFor: '1m',
      // Of max_connections minus superuser_reserved_connections: what applications can use.
      connectionsWarning: 0.8,
      connectionsCritical: 0.95,
      connectionsFor: '5m',
      // Replication lag in seconds on replicas.  Raise it if your replicas serve only reports.
      replicationLagWarning: 30,
      replicationLagCritical: 300,
      replicationLagFor: '2m',
      replicaNotStreamingFor: '5m',
      // An inactive slot retaining more WAL than this will fill the primary's disk.
      inactiveSlotRetainedBytes: 1024 * 1024 * 1024,
      inactiveSlotFor: '15m',
      // Deadlocks in `deadlocksWindow` above this count; any deadlock is an application bug.
      deadlocksThreshold: 0,
      deadlocksWindow: '10m',
      // Seconds.  Long transactions hold back vacuum and replicas; idle-in-transaction
      // sessions also hold locks.
      longTransactionSeconds: 3600,
      idleInTransactionSeconds: 300,
      longTransactionFor: '2m',
      // Transaction-ID age: wraparound shutdown comes at about 2.1 billion.
      xidAgeWarning: 1000000000,
      xidAgeCritical: 1500000000,
      // Buffer cache hit ratio; below 0.9 usually means the working set outgrew memory.
      // Only evaluated with at least `cacheMinReadRate` block reads per second.
      cacheHitRatio: 0.9,
      cacheMinReadRate: 10,
      cacheHitFor: '1h',
      // Database growth over `growthWindow` as a fraction, for databases above `growthMinBytes`.
      growthRatio: 0.2,
      growthWindow: '1d',
      growthMinBytes: 1024 * 1024 * 1024,
      // The data-retention example: the custom query `pg_retention` of examples/queries.yaml
      // exports the age of a table's oldest row; alert when older than your policy (GDPR:
      // "delete after N days").  Rename if your query is called otherwise.
      retentionMetric: 'pg_retention_oldest_row_age_seconds',
      retentionMaxAgeSeconds: 30 * 86400,
      retentionFor: '1h',
      // The retention metric was there within `retentionLookback` and is gone while the
      // server answers: the query fails, returns no row or was dropped from the queries
      // file, and PostgresDataRetentionExceeded cannot fire.  Shorten the look-back if you
      // remove the query on purpose and do not want a day of alert.
      retentionLookback: '1d',
      retentionMissingFor: '30m',
      // Sessions blocked by another session's lock (pg_blocking_pids): a lock pile-up
      // (an ALTER TABLE queued behind a long transaction, everything queued behind it).
      // Hot rows block a few sessions for milliseconds all day: raise it for a busy OLTP.
      blockedSessions: 5,
      blockedFor: '5m',
      // Dead tuples: a table whose dead rows are above `deadTupleRatio` of its rows and
      // `deadTupleMinRows`, and that autovacuum has not vacuumed within
      // `autovacuumStalledSeconds` (or never).  autovacuum starts at 20% dead
      // (autovacuum_vacuum_scale_factor) on its own: past that and a day without a run, it
      // is blocked (a long transaction, a held slot) or cannot keep up.  The row floor
      // keeps small tables, where bloat costs nothing, quiet.
      deadTupleRatio: 0.2,
      deadTupleMinRows: 100000,
      autovacuumStalledSeconds: 86400,
      deadTupleFor: '1h',
      // MultiXact-ID age (row locks shared by several transactions, foreign keys): it wraps
      // around at about 2.1 billion like transaction IDs; autovacuum freezes from
      // autovacuum_multixact_freeze_max_age (400 million by default).
      mxidAgeWarning: 1000000000,
      mxidAgeCritical: 1500000000,
      wraparoundFor: '10m',
      // WAL retained by an *active* slot: its consumer (a logical subscriber, Debezium, a
      // slow replica) reads slower than the primary writes.  Size it against the free space
      // of pg_wal: a slot that keeps this much and growing fills the disk.
      activeSlotRetainedBytes: 8 * 1024 * 1024 * 1024,
      activeSlotFor: '30m',
      // A replica whose WAL replay is paused (pg_wal_replay_pause(), or
      // recovery_target_action = pause after a point-in-time recovery) serves ever older
      // data.  Longer if you pause replicas on purpose for reports or backups.
      replayPausedFor: '10m',
    },
    pgbouncer: {
      selector: $._config.exporterSelector,
      downFor: '1m',
      // Clients waiting for a server connection this long: the pool is too small.
      clientsWaitingFor: '2m',
      // A client waiting more than this many seconds is a user-visible stall.
      maxWaitSeconds: 5,
      maxWaitFor: '1m',
      // Client connections of max_client_conn: past it PgBouncer refuses new clients
      // ("no more connections allowed"), it does not queue them.  The warning leaves room
      // for a deploy's second set of app instances.
      clientConnectionsWarning: 0.8,
      clientConnectionsCritical: 0.95,
      clientConnectionsFor: '5m',
      // A PAUSEd database holds every client until RESUME: a switchover takes seconds to a
      // minute; longer is a forgotten PAUSE (or a stuck reload).
      pausedFor: '5m',
    },

    // ------------------------------------------------------------------ Redis
    redis: {
      selector: $._config.exporterSelector,
      downFor: '1m',
      memoryRatio: 0.9,
      memoryFor: '5m',
      // maxmemory-policy values (a regex on redis_instance_info's `maxmemory_policy`) of a
      // cache: one that evicts any key when full sits at its maxmemory and evicts all day by
      // design, so RedisMemoryHigh (against maxmemory) and RedisEvictions skip it.  noeviction
      // and volatile-* servers refuse writes when full (volatile-* once no key with a TTL is
      // left), so they keep both alerts.  Empty it to alert on caches too.
      cachePolicies: 'allkeys-lru|allkeys-lfu|allkeys-random',
      // Evictions per second.  Caches (`cachePolicies`) are already skipped; narrow the
      // selector (e.g. 'target!="cache"') for other servers that may evict.
      evictionsSelector: '',
      evictionsRate: 0,
      evictionsFor: '5m',
      rejectedConnectionsFor: '0m',
      replicaLinkDownFor: '2m',
      // A primary that had replicas within this look-back and now has none.
      replicasLookback: '1d',
      noReplicasFor: '5m',
      // How far back a change of role (failover) is reported.
      failoverWindow: '10m',
      lastSaveFailedFor: '5m',
      // Connected clients as a share of maxclients: past it, new connections are refused
      // (RedisRejectedConnections).  Lower it if your clients open connections in bursts.
      clientsRatio: 0.9,
      clientsFor: '5m',
      // A failing AOF write makes Redis refuse every write until one succeeds again.
      aofWriteFailedFor: '2m',
      // No successful RDB save for this many seconds while there are unsaved changes.  The
      // default save points (3600 1, 300 100, 60 10000) save at least hourly when anything
      // changed; raise it if yours are farther apart.  Servers that have not saved since
      // they started (snapshots off, `save ""`) are skipped.
      lastSaveMaxAgeSeconds: 2 * 3600,
      lastSaveAgeFor: '15m',
      // A sentinel in TILT mode (its clock jumped, or it was stalled) stops acting; it leaves
      // TILT after 30 s of normal operation, so longer than this is not a blip.
      sentinelTiltFor: '5m',
      // Fewer sentinels reachable than a majority of those that watch the primary: no
      // failover can be authorized if the primary fails now.
      sentinelQuorumFor: '5m',
      sentinelMasterDownFor: '1m',
      // Key groups whose sudden drop matters, and by how much (a fraction of the last hour's peak).
      sessionKeyGroups: 'sessions',
      keyDropRatio: 0.5,
      keyDropMinKeys: 100,
      keyDropFor: '5m',
    },

    // ------------------------------------------------------------------ billing (Lago)
    lago: {
      selector: $._config.exporterSelector,
      downFor: '5m',
      // A declined card is routine: a healthy Lago sees failed payments every day and dunning
      // recovers most.  LagoFailedPaymentsIncreasing needs at least `failedPaymentsMin` more
      // invoices with a failed payment within `failedWindow`, and more than
      // `failedPaymentsShare` of the invoices finalized in it (a provider rejecting every charge).
      failedPaymentsMin: 3,
      failedPaymentsShare: 0.5,
      // Dunning retries cards that already failed, so most retries fail in a healthy system:
      // LagoFailedPaymentRetries needs `failedRetriesMin` failed payment requests within
      // `failedWindow` and not one that succeeded.
      failedRetriesMin: 5,
      failedWindow: '1h',
      // Both must hold this long: one collection whose counts were read mid-update (the
      // failed list before the finalized one) is no incident.
      failedFor: '10m',
      // Overdue balance grown by this fraction against `overdueWindow` ago.  Without analytics
      // (no lago_overdue_balance_cents) the number of overdue invoices is read instead, and
      // must also have grown by at least `overdueInvoicesMin`.
      overdueGrowthRatio: 0.1,
      overdueInvoicesMin: 3,
      // ... and the balance by at least this much, in the currency's minor unit (cents;
      // yen for JPY), so a few cents on an almost empty balance do not count.  A balance that
      // was 0 `overdueWindow` ago has no growth ratio: it fires the day after, if it keeps growing.
      overdueMinCents: 10000,
      overdueWindow: '1d',
      overdueFor: '1h',
      // Terminations in the last day above this multiple of the 7-day daily average,
      // and at least `terminationsMin`, so three cancellations on a small base do not fire.
      terminationsFactor: 2,
      terminationsMin: 3,
      terminationsFor: '1h',
      // Invoices whose finalization failed (status `failed`: usually the tax integration
      // rejected them) are never sent, so nobody is billed for them.  Any new one within
      // `finalizeFailedWindow` is worth a look; raise the minimum if your tax provider has
      // routine hiccups that Lago's retries fix.
      finalizeFailedMin: 1,
      finalizeFailedWindow: '1h',
    },

    // ------------------------------------------------------------------ Directus (CMS)
    directus: {
      selector: $._config.exporterSelector,
      downFor: '5m',
      healthFor: '5m',
      // The most connections Directus's pool may open (DB_POOL__MAX), per database client
      // (the `client` label); `default` for the clients not listed.  Directus reports only
      // the connections in use and the idle open ones (connectionsUsed / connectionsAvailable
      // are its pool's numUsed and numFree), not the maximum: 2 busy of 2 lazily opened is not
      // a full pool.  Knex's defaults are 10, and 1 for SQLite: set yours if you changed
      // DB_POOL__MAX.  A pool seen with more open connections than this counts as that large.
      poolMax: { default: 10, sqlite3: 1 },
      // Share of the pool's maximum in use: past it, requests soon queue for a connection.
      connectionsRatio: 0.8,
      connectionsFor: '10m',
    },

    // ------------------------------------------------------------------ email
    email: {
      selector: $._config.exporterSelector,
      // API stats are cached 300 s by default: give them time before calling the provider down.
      providerDownFor: '15m',
      // Status pages of your providers (statuspages: in the exporter config).
      statuspageSelector: $._config.exporterSelector,
      incidentFor: '5m',
      // Bounce ratio: SES puts an account under review at 5% and warns at 2%.
      bounceWarning: 0.02,
      bounceCritical: 0.05,
      // Complaints: mailbox providers' sender guidelines (Gmail, Yahoo): stay under 0.1%,
      // never reach 0.3%.
      complaintWarning: 0.001,
      complaintCritical: 0.003,
      reputationFor: '15m',
      // Bounce and complaint ratios computed from email_events_total, for every provider
      // (only Postmark and SES report a reputation figure of their own; where they do, the
      // alerts use theirs).  Six hours smooths the providers' 15-minute to daily counters
      // and still catches a bad campaign the same morning; below `ratioMinRequests` emails
      // in the window no ratio is recorded, so 1 bounce out of 3 mails is no incident.
      ratioWindow: '6h',
      ratioMinRequests: 100,
      // Opens and clicks per sent email over a day (engagement follows the daily rhythm).
      // Since Apple's Mail Privacy Protection (2021) opens are inflated by prefetching: read
      // them as a trend, never as a count of people.
      engagementWindow: '1d',
      // EmailOpenRateDropped (info): the open ratio below `openDropRatio` times its own
      // average over `openBaselineWindow`, with at least `openMinRequests` sent in the
      // engagement window.  A sudden halving is the usual first sign that mail lands in spam.
      openDropRatio: 0.5,
      openBaselineWindow: '7d',
      openMinRequests: 200,
      openDropFor: '2h',
      // AWS SES account state.  Sending paused is an outage for every email type; probation
      // means SES reviews the account and will pause it if nothing changes.
      sesPausedFor: '5m',
      sesProbationFor: '15m',
      // Share of the rolling 24-hour send quota used: past 90% the next campaign or a retry
      // storm is refused (-1 means unlimited and never fires).
      sendQuotaRatio: 0.9,
      sendQuotaFor: '15m',
      // No deliveries in `deliveriesWindow` while at least `deliveriesMinRequests` were requested.
      // Only providers that report deliveries (SendGrid, Mailgun, Resend) can tell this; see
      // docs/metrics/email.md for what stands in for Postmark and SES.
      deliveriesWindow: '1h',
      deliveriesMinRequests: 10,
      deliveriesFor: '15m',
      // Per email type, from the providers' signed webhooks (email_webhooks: in the exporter
      // config; series without `target`, one per provider and email_type).  The bounce and
      // complaint ratios of each type use `ratioWindow`, `ratioMinRequests` and the account
      // thresholds above, with "sent" = delivered + bounced: the two events every provider's
      // webhook reports (Postmark's never says `requested`).  Raise `typeRatioFor` if a
      // single bad batch of one type pages you too often.
      typeRatioFor: '15m',
      // EmailTypeDeliveriesStopped: no `delivered` event of a type in `typeSilentWindow`
      // while the same window `typeSilentBaselineOffset` earlier had at least
      // `typeSilentMinDelivered` (a type that is quiet at this hour never fires), and the
      // provider's webhook still posts (else EmailWebhookStopped says so).  Lower the minimum
      // for rare but vital types (password resets); raise it if a type's volume is bursty.
      typeSilentWindow: '1h',
      typeSilentBaselineOffset: '1d',
      typeSilentMinDelivered: 10,
      typeSilentFor: '15m',
      // EmailWebhookStopped: no verified webhook request from a provider in
      // `webhookSilentWindow` while its polled stats show at least `webhookSilentMinRequested`
      // emails requested in the same window: the endpoint, its DNS or TLS, or the provider's
      // webhook setting broke.  Must be longer than the providers' retry backoff.
      webhookSilentWindow: '1h',
      webhookSilentMinRequested: 20,
      webhookSilentFor: '15m',
      // EmailWebhookRefused: over `webhookRefusedWindow`, more than `webhookRefusedRatio` of
      // the requests that name a provider are refused for a bad signature or a stale
      // timestamp, with at least `webhookRefusedMin` such refusals: usually a rotated key or
      // password not yet in the exporter config, or a clock far off.  The minimum keeps a
      // scanner's few requests on a quiet night from paging.
      webhookRefusedWindow: '30m',
      webhookRefusedRatio: 0.5,
      webhookRefusedMin: 5,
      webhookRefusedFor: '10m',
      // DNS changes propagate in minutes; do not page during a planned record change.
      dnsFor: '15m',
      // RFC 7208 limit on DNS-querying SPF mechanisms; above it receivers return permerror.
      spfMaxLookups: 10,
      // RSA DKIM keys below this many bits; ed25519 keys (256 bits) are strong and skipped.
      dkimMinBits: 2048,
      domainUnverifiedFor: '15m',
    },

    // ------------------------------------------------------------------ community names (opt-in)
    // Recording rules (recording/compat.libsonnet) that rebuild postgres_exporter's and
    // redis_exporter's names for the series this exporter renamed on purpose (`_total` on
    // counters, seconds instead of milliseconds, `pg_locks_count` ...), with their label names.
    // Turn it on while you move over from the community exporters, so their dashboards and
    // alerts keep working unchanged; or load generated/prometheus_rules_compat.yaml beside the
    // other rule files, which holds the same group on its own.  Every recorded series is stored
    // a second time: turn it off once dashboards and alerts read our names.  What it records
    // and what it cannot rebuild: README.md, "Keeping community dashboards and alerts".
    compat: {
      enabled: false,
      // Redis's LATENCYSTATS percentiles (`latency-tracking-info-percentiles`, default
      // 50 99 99.9) as redis_exporter labels them (quantile="99.9") -> as we label them
      // (quantile="0.999").  Add yours if you track other percentiles.
      redisLatencyQuantiles: { '50': '0.5', '99': '0.99', '99.9': '0.999' },
    },
  },
}
