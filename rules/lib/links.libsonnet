// The one place that adds runbook_url and dashboard_url to alerts, so no alert
// carries a hand-typed link that can drift from docs/runbooks.md or the dashboards.
// Each group names its dashboard in a hidden `dashboard::` field (a key of
// _config.dashboardUids); a rule may override it with its own `dashboard::`.
{
  runbookUrl(config, alertname):: config.runbookUrlBase + '#' + std.asciiLower(alertname),

  dashboardUrl(config, key):: config.grafanaUrl + '/d/' + config.dashboardUids[key],

  addLinks(config, groups):: [
    group {
      rules: [
        if std.objectHas(rule, 'alert') then
          local key = if std.objectHasAll(rule, 'dashboard') then rule.dashboard else group.dashboard;
          rule {
            annotations+: {
              runbook_url: $.runbookUrl(config, rule.alert),
              dashboard_url: $.dashboardUrl(config, key),
            },
          }
        else rule
        for rule in group.rules
      ],
    }
    for group in groups
  ],
}
