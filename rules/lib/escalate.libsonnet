// The escalation pattern: an alert that is still firing after a longer `for` is
// repeated under the same name with a higher severity and `escalated="true"`.
// Both copies fire together once escalated; Alertmanager's inhibit rule (critical
// inhibits warning with the same alertname and target) leaves only the escalated
// one, and routing sends it where criticals go (a page instead of a ticket).
// Same name, so dashboards and silences keep treating it as one alert.
{
  escalate(rule, longerFor, severity='critical'):: [
    rule,
    rule {
      'for': longerFor,
      labels+: { severity: severity, escalated: 'true' },
    },
  ],
}
