// Uptime and TLS of the configured URLs (the `http_probes` source), from probe metrics
// (blackbox_exporter names, so the same alerts work on blackbox_exporter's probes).
local esc = import '../lib/escalate.libsonnet';
local n = (import '../lib/promql.libsonnet').num;
{
  prometheusAlerts+:: {
    local c = $._config.probe,
    // The label naming the endpoint (config: probe.targetLabel), as a template reference.
    local t = '{{ $labels.%s }}' % c.targetLabel,
    // What identifies one probe: the scrape target plus, for our exporter, the probe's name.
    local by = std.join(', ', ['job', 'instance'] + (if std.member(['job', 'instance'], c.targetLabel) then [] else [c.targetLabel])),
    groups+: [
      {
        name: 'stack-exporter.http_probes',
        dashboard:: 'overview',
        rules: esc.escalate({
          alert: 'ProbeEndpointDown',
          expr: 'probe_success{%s} == 0' % c.selector,
          'for': c.downFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: 'An HTTP endpoint is down.',
            description: 'The probe of %s has failed for %s.' % [t, c.downFor],
          },
        }, $._config.escalation.probeEndpointDown) + [
          {
            alert: 'ProbeSlow',
            expr: 'probe_duration_seconds{%s} > %s' % [c.selector, n(c.slowSeconds)],
            'for': c.slowFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'An HTTP endpoint answers slowly.',
              description: 'The probe of %s took {{ $value | humanizeDuration }} (threshold %ss).' % [t, n(c.slowSeconds)],
            },
          },
        ] + [
          {
            alert: 'ProbeCertificateExpiringSoon',
            expr: 'probe_ssl_earliest_cert_expiry{%s} - time() < %s * 86400' % [c.selector, n(x.days)],
            labels: { severity: x.severity },
            annotations: {
              summary: 'A TLS certificate expires soon.',
              description: 'The certificate served by %s expires in {{ $value | humanizeDuration }} (threshold %s days).' % [t, n(x.days)],
            },
          }
          for x in [{ days: c.certWarningDays, severity: 'warning' }, { days: c.certCriticalDays, severity: 'critical' }]
        ] + [
          {
            // Max-age series exist only while the response carries the directive, so a
            // dropped header is "no series": the cache-hit series (every check_cache probe
            // has one) stands in as 0.  Only probes that had a long lifetime within the
            // look-back fire: an HTML page with a short max-age by design never does.
            // A CDN-only lifetime (max-age=0, s-maxage=86400) is a long lifetime.
            alert: 'ProbeCacheHeadersLost',
            // Both directives count (the longer wins): label_replace keeps `or` from
            // dropping one of two series with the same labels.
            expr: |||
              (
                max by (%(by)s) (
                  label_replace(probe_http_cache_max_age_seconds{%(s)s}, "directive", "max-age", "", "")
                  or
                  label_replace(probe_http_cache_shared_max_age_seconds{%(s)s}, "directive", "s-maxage", "", "")
                )
                or
                0 * max by (%(by)s) (probe_http_cache_hit{%(s)s})
              ) < %(min)s
              and on (%(by)s)
              max by (%(by)s) (
                label_replace(max_over_time(probe_http_cache_max_age_seconds{%(s)s}[%(lb)s]), "directive", "max-age", "", "")
                or
                label_replace(max_over_time(probe_http_cache_shared_max_age_seconds{%(s)s}[%(lb)s]), "directive", "s-maxage", "", "")
              ) >= %(min)s
            ||| % { s: c.selector, by: by, min: n(c.cacheMinMaxAgeSeconds), lb: c.cacheLookback },
            'for': c.cacheFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A static asset lost its long cache lifetime.',
              description: '%s is now served with a cache lifetime (max-age or s-maxage) of {{ $value | humanizeDuration }}, under %s although it had one within %s: browsers and the CDN go back to the origin on every request.' % [t, n(c.cacheMinMaxAgeSeconds) + 's', c.cacheLookback],
            },
          },
          {
            alert: 'ProbeCacheMissing',
            expr: |||
              avg_over_time(probe_http_cache_hit{%(s)s}[%(w)s]) < %(r)s
              and
              max_over_time(probe_http_cache_hit{%(s)s}[%(lb)s]) == 1
            ||| % { s: c.selector, w: c.cacheHitWindow, r: n(c.cacheHitRatio), lb: c.cacheLookback },
            'for': c.cacheFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The CDN stopped serving an asset from its cache.',
              description: 'Only {{ $value | humanizePercentage }} of the probes of %s in the last %s were cache hits (it was a hit within %s): every request reaches the origin.' % [t, c.cacheHitWindow, c.cacheLookback],
            },
          },
        ],
      },
    ],
  },
}
