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
    // Stable uids of the dashboards in dashboards/ (issue 7).  Change only if you
    // re-import the dashboards under other uids.
    dashboardUids: {
      overview: 'stack-overview',
      redis: 'stack-redis',
      postgres: 'stack-postgres',
      billing: 'stack-billing',
      email: 'stack-email',
      hosts: 'stack-hosts',
      exporter: 'stack-exporter',
    },

    // The pack's version, exported as stack_rulepack_info{version}; lives in rules/VERSION.
    rulepackVersion: std.stripChars(importstr 'VERSION', ' \n'),

    // Labels that say "the same thing" for the InfoInhibitor: an info alert stays quiet
    // unless a warning or critical alert fires with the same values of these labels.
    // Add `namespace` or `cluster` if one Prometheus watches several stacks.
    infoInhibitorLabels: ['target'],

    // Labels of the PrometheusRule object: prometheus-operator picks rules by its
    // ruleSelector, so match what your Prometheus resource selects.
    prometheusRuleLabels: { prometheus: 'k8s', role: 'alert-rules', 'app.kubernetes.io/name': 'stack-exporter' },

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

      // 5xx ratio: 5% is where users notice; lower it for a payment API.
      errorRatioWarning: 0.05,
      errorRatioFor: '5m',
      // Still firing after this long: escalate to critical (same alert, `escalated="true"`).
      errorRatioEscalateFor: '30m',
      errorRatioEscalatedSeverity: 'critical',
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
      // itself, use its job (e.g. 'job="blackbox"').
      selector: $._config.exporterSelector,
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

    // ------------------------------------------------------------------ hosts (node_exporter)
    node: {
      // node_exporter's scrape job.
      selector: 'job="node"',
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
      // Predicted full within this many hours, extrapolating the last `fsPredictWindow`;
      // only when already below `fsPredictMaxFree` free, so a fresh log burst does not fire.
      fsPredictHours: 4,
      fsPredictWindow: '6h',
      fsPredictMaxFree: 0.4,
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
    },
    pgbouncer: {
      selector: $._config.exporterSelector,
      downFor: '1m',
      // Clients waiting for a server connection this long: the pool is too small.
      clientsWaitingFor: '2m',
      // A client waiting more than this many seconds is a user-visible stall.
      maxWaitSeconds: 5,
      maxWaitFor: '1m',
    },

    // ------------------------------------------------------------------ Redis
    redis: {
      selector: $._config.exporterSelector,
      downFor: '1m',
      memoryRatio: 0.9,
      memoryFor: '5m',
      // Evictions per second.  A pure LRU cache evicts by design: narrow the selector
      // (e.g. 'target!="cache"') for those.
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
      // Overdue balance grown by this fraction against `overdueWindow` ago.  Without analytics
      // (no lago_overdue_balance_cents) the number of overdue invoices is read instead, and
      // must also have grown by at least `overdueInvoicesMin`.
      overdueGrowthRatio: 0.1,
      overdueInvoicesMin: 3,
      overdueWindow: '1d',
      overdueFor: '1h',
      // Terminations in the last day above this multiple of the 7-day daily average,
      // and at least `terminationsMin`, so three cancellations on a small base do not fire.
      terminationsFactor: 2,
      terminationsMin: 3,
      terminationsFor: '1h',
    },

    // ------------------------------------------------------------------ Directus (CMS)
    directus: {
      selector: $._config.exporterSelector,
      downFor: '5m',
      healthFor: '5m',
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
